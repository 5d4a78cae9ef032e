/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reads a libvirt domain XML (hostile input: libvirt passes whatever the domain's author wrote) and works out the
 * huge page reservations the guest needs. Semantics follow libvirt's qemu driver; see README "libvirt". */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domain-internal.h"

int domain_error(DomainError *e, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return r;
}

const char *domain_cell_what(char buf[static 64], const DomainCell *c) {
        switch (c->model) {
        case MEMORY_MODEL_DIMM:
                snprintf(buf, 64, "<memory model='dimm'> #%" PRIu32, c->id);
                break;
        case MEMORY_MODEL_VIRTIO_MEM:
                snprintf(buf, 64, "<memory model='virtio-mem'> #%" PRIu32, c->id);
                break;
        case MEMORY_MODEL_HOTPLUG:
                snprintf(buf, 64, "the hot-plug room of <maxMemory>");
                break;
        default:
                snprintf(buf, 64, "guest NUMA cell %" PRIu32, c->id);
        }
        return buf;
}

/* Echoes untrusted text back in an error only as far as it is short and printable. */
static const char *safe_text(char buf[static 48], const char *s) {
        size_t i;
        for (i = 0; s && s[i] && i < 40; i++)
                buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        buf[i] = '\0';
        if (s && s[i])
                strcpy(buf + i, "...");
        return buf;
}

/* ---- numbers, units, node sets --------------------------------------------------------------------- */

/* Digits only: no sign, no spaces, no hex; a value beyond 2^64-1 is an overflow, not a wrap. */
static int parse_number(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

/* libvirt's scaled integers (virScaleInteger): no unit means KiB here; "b"/"bytes"; "k"/"KiB" = 1024,
 * "KB" = 1000, and so on up to "E"/"EiB", case-insensitive. */
static int parse_unit(const char *unit, uint64_t *ret) {
        uint64_t base, scale = 1;
        int power;

        if (!unit || !*unit) {
                *ret = 1024;
                return 0;
        }
        if (strcasecmp(unit, "b") == 0 || strcasecmp(unit, "byte") == 0 || strcasecmp(unit, "bytes") == 0) {
                *ret = 1;
                return 0;
        }
        if (unit[1] == '\0' || strcasecmp(unit + 1, "iB") == 0)
                base = 1024;
        else if ((unit[1] == 'b' || unit[1] == 'B') && unit[2] == '\0')
                base = 1000;
        else
                return -EINVAL;
        switch (tolower((unsigned char) unit[0])) {
        case 'k': power = 1; break;
        case 'm': power = 2; break;
        case 'g': power = 3; break;
        case 't': power = 4; break;
        case 'p': power = 5; break;
        case 'e': power = 6; break;
        default: return -EINVAL;
        }
        while (power-- > 0)
                scale *= base;
        *ret = scale;
        return 0;
}

/* value x unit in bytes, with an error naming what for. */
static int parse_scaled(const char *value, const char *unit, const char *what, uint64_t *ret, DomainError *e) {
        char b1[48], b2[48];
        uint64_t v, scale;
        int r;

        if (!value)
                return domain_error(e, -EINVAL, "%s has no value", what);
        r = parse_number(value, &v);
        if (r == -ERANGE)
                return domain_error(e, -ERANGE, "%s value %s overflows a 64-bit number", what, safe_text(b1, value));
        if (r < 0)
                return domain_error(e, -EINVAL, "%s value '%s' is not a number", what, safe_text(b1, value));
        if (parse_unit(unit, &scale) < 0)
                return domain_error(e, -EINVAL, "%s has an unknown unit '%s'", what, safe_text(b1, unit));
        if (v > UINT64_MAX / scale)
                return domain_error(e, -ERANGE, "%s of %s %s overflows 2^64 bytes", what, safe_text(b1, value),
                                    unit ? safe_text(b2, unit) : "KiB");
        *ret = v * scale;
        return 0;
}

/* libvirt's bitmap syntax: "0-3,^2,5". The set is a byte array of max entries. */
static int parse_nodeset(const char *s, uint8_t *set, uint32_t max, const char *what, DomainError *e) {
        char b[48];
        const char *p = s;

        memset(set, 0, max);
        if (!s || !*s)
                return domain_error(e, -EINVAL, "%s is empty", what);
        for (;;) {
                bool neg = false;
                uint64_t lo, hi;
                char *end;

                while (*p == ' ')
                        p++;
                if (*p == '^') {
                        neg = true;
                        p++;
                }
                if (!isdigit((unsigned char) *p))
                        goto invalid;
                errno = 0;
                lo = strtoull(p, &end, 10);
                if (errno == ERANGE || lo >= max)
                        return domain_error(e, -ERANGE, "%s '%s' names %s beyond the limit of %" PRIu32, what,
                                            safe_text(b, s), "a number", max - 1);
                p = end;
                hi = lo;
                if (*p == '-' && !neg) {
                        p++;
                        if (!isdigit((unsigned char) *p))
                                goto invalid;
                        errno = 0;
                        hi = strtoull(p, &end, 10);
                        if (errno == ERANGE || hi >= max)
                                return domain_error(e, -ERANGE, "%s '%s' names %s beyond the limit of %" PRIu32,
                                                    what, safe_text(b, s), "a number", max - 1);
                        if (hi < lo)
                                goto invalid;
                        p = end;
                }
                for (uint64_t i = lo; i <= hi; i++)
                        set[i] = !neg;
                while (*p == ' ')
                        p++;
                if (*p == '\0')
                        break;
                if (*p != ',')
                        goto invalid;
                p++;
        }
        for (uint32_t i = 0; i < max; i++)
                if (set[i])
                        return 0;
        return domain_error(e, -EINVAL, "%s '%s' is empty", what, safe_text(b, s));
invalid:
        return domain_error(e, -EINVAL, "%s '%s' is not a valid node set", what, safe_text(b, s));
}

static int set_to_list(const uint8_t *set, uint32_t max, uint32_t **ret, size_t *ret_n) {
        size_t n = 0;
        uint32_t *l;

        for (uint32_t i = 0; i < max; i++)
                n += set[i] != 0;
        l = calloc(n ? n : 1, sizeof(uint32_t));
        if (!l)
                return -ENOMEM;
        n = 0;
        for (uint32_t i = 0; i < max; i++)
                if (set[i])
                        l[n++] = i;
        *ret = l;
        *ret_n = n;
        return 0;
}

/* ---- the XML tree ---------------------------------------------------------------------------------- */

static bool is_element(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *) name) == 0;
}

static xmlNode *child(const xmlNode *parent, const char *name) {
        for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
                if (is_element(n, name))
                        return n;
        return NULL;
}

/* The attribute's value, owned by the tree; NULL when absent. Attribute values of a tree without entities are
 * a single text node. */
static const char *attr(const xmlNode *n, const char *name) {
        for (xmlAttr *a = n->properties; a; a = a->next)
                if (a->ns == NULL && xmlStrcmp(a->name, (const xmlChar *) name) == 0)
                        return a->children && a->children->type == XML_TEXT_NODE && !a->children->next ?
                                       (const char *) a->children->content :
                                       "";
        return NULL;
}

/* The element's text, when it is one text node (no entities, no child elements); else NULL. */
static const char *text(const xmlNode *n) {
        if (n && n->children && n->children->type == XML_TEXT_NODE && !n->children->next)
                return (const char *) n->children->content;
        return NULL;
}

static void trimmed(char *buf, size_t len, const char *s) {
        size_t a = 0, b;
        if (!s) {
                buf[0] = '\0';
                return;
        }
        b = strlen(s);
        while (a < b && isspace((unsigned char) s[a]))
                a++;
        while (b > a && isspace((unsigned char) s[b - 1]))
                b--;
        if (b - a >= len)
                b = a + len - 1;
        memcpy(buf, s + a, b - a);
        buf[b - a] = '\0';
}

typedef struct Page {
        uint64_t size; /* 0: the default */
        bool has_nodeset;
        uint8_t cells[DOMAIN_CELLS_MAX];
} Page;

typedef struct Tune {
        bool present;
        NumaMode mode;     /* NUMA_MODE_NONE without a nodeset */
        NumaMode declared; /* the mode= given, for a device's own <source><nodemask> */
        uint8_t nodes[DOMAIN_HOST_NODES_MAX];
} Tune;

static int parse_mode(const char *s, bool have_nodeset, NumaMode *ret, NumaMode *ret_declared, const char *what,
                      DomainError *e) {
        char b[48];
        if (!s || streq(s, "strict"))
                *ret = NUMA_MODE_STRICT;
        else if (streq(s, "preferred"))
                *ret = NUMA_MODE_PREFERRED;
        else if (streq(s, "interleave"))
                *ret = NUMA_MODE_INTERLEAVE;
        else if (streq(s, "restrictive"))
                *ret = NUMA_MODE_RESTRICTIVE;
        else
                return domain_error(e, -EINVAL, "%s has an unknown mode '%s'", what, safe_text(b, s));
        *ret_declared = *ret;
        if (!have_nodeset)
                *ret = NUMA_MODE_NONE;
        return 0;
}

DomainDef *domain_def_free(DomainDef *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_cells; i++)
                free(d->cells[i].host_nodes);
        free(d->cells);
        for (size_t i = 0; i < d->n_devices; i++)
                free(d->devices[i].host_nodes);
        free(d->devices);
        free(d->name);
        free(d);
        return NULL;
}

static void domain_def_freep(DomainDef **d) {
        domain_def_free(*d);
}

static int parse_uuid(const char *s, char out[static 37], DomainError *e) {
        char buf[64], b[48];

        if (!s)
                return domain_error(e, -EINVAL, "the domain has no <uuid>");
        trimmed(buf, sizeof(buf), s);
        if (strlen(buf) != 36)
                goto invalid;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? buf[i] != '-' : !isxdigit((unsigned char) buf[i]))
                        goto invalid;
                out[i] = (char) tolower((unsigned char) buf[i]);
        }
        out[36] = '\0';
        return 0;
invalid:
        return domain_error(e, -EINVAL, "domain <uuid> '%s' is not a UUID like 8-4-4-4-12 hex digits",
                            safe_text(b, s));
}

/* Gives cell i its page size, as libvirt's qemu driver does: the <page> whose nodeset names the cell, else the
 * one <page> without a nodeset, else (no <page> at all) the default size; a cell that none of them covers is
 * ordinary memory. A memory device without <source><pagesize> gets its target cell's size (libvirt 9's
 * qemuBuildMemoryBackendProps() asks the same question with the device's target node), or with no target node
 * (cell >= DOMAIN_CELLS_MAX) the <page> without a nodeset. */
static uint64_t cell_page_size(const Page *pages, size_t n_pages, bool bare, uint32_t cell) {
        const Page *fallback = NULL;
        if (bare)
                return 0;
        for (size_t i = 0; i < n_pages; i++) {
                if (!pages[i].has_nodeset)
                        fallback = &pages[i];
                else if (cell < DOMAIN_CELLS_MAX && pages[i].cells[cell])
                        return pages[i].size;
        }
        return fallback ? fallback->size : DOMAIN_PAGE_NONE;
}

/* A device with <source><pagesize> asks for huge pages even in a domain without <memoryBacking><hugepages>. */
static bool devices_ask_for_pages(const xmlNode *devices) {
        for (xmlNode *n = devices ? devices->children : NULL; n; n = n->next)
                if (is_element(n, "memory") && child(child(n, "source"), "pagesize"))
                        return true;
        return false;
}

/* <devices><memory>: every model counts against <maxMemory>; dimm and virtio-mem are mapped from the page size and
 * placement libvirt gives them, with their full <target><size> (virtio-mem's <requested> can grow at any time
 * without a hook). nvdimm and virtio-pmem map their <source><path>, sgx-epc the EPC: no huge pages. */
static int parse_devices(const xmlNode *devices, DomainDef *d, bool backing, const Page *pages, size_t n_pages,
                         bool bare, const Tune *tunes, uint64_t *ret_total, DomainError *e) {
        uint64_t total = 0;
        uint32_t k = 0;
        char b[48];
        int r;

        for (xmlNode *n = devices ? devices->children : NULL; n; n = n->next) {
                const char *model;
                xmlNode *target, *source, *x;
                DomainCell *c;
                const Tune *t;
                uint64_t size, node = UINT64_MAX;
                char what[64], w2[96];
                bool mapped;

                if (!is_element(n, "memory"))
                        continue;
                if (k >= DOMAIN_MEMORY_DEVICES_MAX)
                        return domain_error(e, -E2BIG, "more than %d <devices><memory> devices",
                                            DOMAIN_MEMORY_DEVICES_MAX);
                k++;
                model = attr(n, "model");
                if (!model)
                        return domain_error(e, -EINVAL, "<devices><memory> #%" PRIu32 " has no model", k);
                if (streq(model, "dimm") || streq(model, "virtio-mem"))
                        mapped = true;
                else if (streq(model, "nvdimm") || streq(model, "virtio-pmem") || streq(model, "sgx-epc"))
                        mapped = false;
                else
                        return domain_error(e, -EINVAL, "<devices><memory> #%" PRIu32 " has an unknown model '%s'", k,
                                            safe_text(b, model));
                snprintf(what, sizeof(what), "<memory model='%s'> #%" PRIu32, model, k);

                target = child(n, "target");
                x = child(target, "size");
                if (!x)
                        return domain_error(e, -EINVAL, "%s has no <target><size>", what);
                snprintf(w2, sizeof(w2), "%s <target><size>", what);
                r = parse_scaled(text(x), attr(x, "unit"), w2, &size, e);
                if (r < 0)
                        return r;
                if (size > UINT64_MAX - total)
                        return domain_error(e, -ERANGE, "the memory devices add up to more than 2^64 bytes");
                total += size;
                if (!mapped)
                        continue;
                if (size == 0)
                        return domain_error(e, -EINVAL, "%s has a <target><size> of 0", what);

                x = child(target, "node");
                if (x && (parse_number(text(x), &node) < 0 || node >= d->n_cells))
                        return domain_error(e, -EINVAL, "%s <target><node> '%s' is not a guest NUMA cell: the guest "
                                            "has %zu cell%s", what, safe_text(b, text(x) ? text(x) : ""), d->n_cells,
                                            d->n_cells > 1 ? "s" : "");

                if (!d->devices && !(d->devices = calloc(DOMAIN_MEMORY_DEVICES_MAX, sizeof(DomainCell))))
                        return -ENOMEM;
                c = &d->devices[d->n_devices++];
                *c = (DomainCell) { .id = k, .bytes = size,
                                    .model = streq(model, "dimm") ? MEMORY_MODEL_DIMM : MEMORY_MODEL_VIRTIO_MEM };

                source = child(n, "source");
                x = child(source, "pagesize");
                if (x) {
                        snprintf(w2, sizeof(w2), "%s <source><pagesize>", what);
                        r = parse_scaled(text(x), attr(x, "unit"), w2, &c->page_size, e);
                        if (r < 0)
                                return r;
                        if (c->page_size == 0 || (c->page_size & (c->page_size - 1)) != 0)
                                return domain_error(e, -EINVAL, "%s <source><pagesize> of %" PRIu64
                                                    " bytes is not a power of 2", what, c->page_size);
                } else if (!backing)
                        c->page_size = DOMAIN_PAGE_NONE; /* no <memoryBacking><hugepages>: ordinary memory */
                else
                        c->page_size = cell_page_size(pages, n_pages, bare,
                                                      node == UINT64_MAX ? UINT32_MAX : (uint32_t) node);
                if (c->page_size == 0)
                        d->uses_default = true;

                /* Placement: the target cell's <memnode>, else <numatune><memory>; <source><nodemask> replaces the
                 * nodes but keeps that mode (strict without any <numatune>), as libvirt does. */
                t = node != UINT64_MAX && tunes[1 + node].present ? &tunes[1 + node] : &tunes[0];
                x = child(source, "nodemask");
                if (x) {
                        _cleanup_free_ uint8_t *set = malloc(DOMAIN_HOST_NODES_MAX);
                        if (!set)
                                return -ENOMEM;
                        snprintf(w2, sizeof(w2), "%s <source><nodemask>", what);
                        r = parse_nodeset(text(x), set, DOMAIN_HOST_NODES_MAX, w2, e);
                        if (r < 0)
                                return r;
                        c->mode = t->present ? t->declared : NUMA_MODE_STRICT;
                        r = set_to_list(set, DOMAIN_HOST_NODES_MAX, &c->host_nodes, &c->n_host_nodes);
                        if (r < 0)
                                return r;
                } else if (t->present && t->mode != NUMA_MODE_NONE) {
                        c->mode = t->mode;
                        r = set_to_list(t->nodes, DOMAIN_HOST_NODES_MAX, &c->host_nodes, &c->n_host_nodes);
                        if (r < 0)
                                return r;
                }
        }
        *ret_total = total;
        return 0;
}

static int parse_tree(xmlNode *root, DomainDef **ret, DomainError *e) {
        _cleanup_(domain_def_freep) DomainDef *d = NULL;
        _cleanup_free_ Page *pages = NULL;
        _cleanup_free_ Tune *tunes = NULL; /* [0]: <memory>, [1 + i]: <memnode cellid=i> */
        xmlNode *n, *backing, *hp, *numa, *numatune, *devices;
        size_t n_pages = 0;
        bool bare = false;
        uint64_t memory = 0, max_memory = 0, devices_total = 0, cells_total = 0;
        bool has_memory = false, has_max = false, numa_cells;
        char b[48];
        int r;

        if (!is_element(root, "domain"))
                return domain_error(e, -EINVAL, "the XML is not a <domain>");
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;

        n = child(root, "name");
        if (!n || !text(n) || !*text(n))
                return domain_error(e, -EINVAL, "the domain has no <name>");
        d->name = strndup(text(n), 256);
        if (!d->name)
                return -ENOMEM;
        d->id = -1;

        backing = child(root, "memoryBacking");
        hp = child(backing, "hugepages");
        devices = child(root, "devices");
        if (!hp && !devices_ask_for_pages(devices)) {
                *ret = TAKE_PTR(d);
                return 0;
        }
        d->hugepages = true;

        n = child(root, "uuid");
        r = parse_uuid(n ? text(n) : NULL, d->uuid, e);
        if (r < 0)
                return r;
        /* <domain id='N'>: a starting or running domain's; libvirt's directory for its huge page files has it. */
        if (attr(root, "id") && !streq(attr(root, "id"), "-1")) {
                uint64_t id;
                if (parse_number(attr(root, "id"), &id) < 0 || id > INT32_MAX)
                        return domain_error(e, -EINVAL, "domain id '%s' is not a number from 0 to %d",
                                            attr(root, "id"), INT32_MAX);
                d->id = (int32_t) id;
        }

        n = child(root, "memory");
        if (n) {
                r = parse_scaled(text(n), attr(n, "unit"), "<memory>", &memory, e);
                if (r < 0)
                        return r;
                has_memory = true;
        }
        n = child(root, "maxMemory");
        if (n) {
                r = parse_scaled(text(n), attr(n, "unit"), "<maxMemory>", &max_memory, e);
                if (r < 0)
                        return r;
                has_max = true;
        }

        /* <hugepages> with no <page> means the default size for all memory. */
        pages = calloc(DOMAIN_PAGES_MAX, sizeof(Page));
        if (!pages)
                return -ENOMEM;
        for (n = hp ? hp->children : NULL; n; n = n->next) {
                Page *p;
                if (!is_element(n, "page"))
                        continue;
                if (n_pages >= DOMAIN_PAGES_MAX)
                        return domain_error(e, -E2BIG, "more than %d <hugepages><page> entries", DOMAIN_PAGES_MAX);
                p = &pages[n_pages++];
                r = parse_scaled(attr(n, "size"), attr(n, "unit"), "<hugepages><page size>", &p->size, e);
                if (r < 0)
                        return r;
                if (p->size == 0 || (p->size & (p->size - 1)) != 0)
                        return domain_error(e, -EINVAL, "<hugepages><page> size of %" PRIu64 " bytes is not a power of 2",
                                            p->size);
                if (attr(n, "nodeset")) {
                        r = parse_nodeset(attr(n, "nodeset"), p->cells, DOMAIN_CELLS_MAX, "<hugepages><page nodeset>", e);
                        if (r < 0)
                                return r;
                        p->has_nodeset = true;
                } else
                        for (size_t i = 0; i + 1 < n_pages; i++)
                                if (!pages[i].has_nodeset)
                                        return domain_error(e, -EINVAL,
                                                            "two <hugepages><page> entries without a nodeset");
        }
        bare = hp && n_pages == 0;

        /* The guest cells. With them, libvirt sizes the guest by their sum and ignores <memory>. */
        numa = child(child(root, "cpu"), "numa");
        for (n = numa ? numa->children : NULL; n; n = n->next) {
                DomainCell *c;
                uint64_t id;
                char what[64];

                if (!is_element(n, "cell"))
                        continue;
                if (d->n_cells >= DOMAIN_CELLS_MAX)
                        return domain_error(e, -E2BIG, "more than %d guest NUMA cells", DOMAIN_CELLS_MAX);
                if (!d->cells && !(d->cells = calloc(DOMAIN_CELLS_MAX, sizeof(DomainCell))))
                        return -ENOMEM;
                c = &d->cells[d->n_cells];
                id = d->n_cells;
                if (attr(n, "id") && (parse_number(attr(n, "id"), &id) < 0 || id >= DOMAIN_CELLS_MAX))
                        return domain_error(e, -EINVAL, "guest NUMA cell id '%s' is not a number below %d",
                                            safe_text(b, attr(n, "id")), DOMAIN_CELLS_MAX);
                for (size_t i = 0; i < d->n_cells; i++)
                        if (d->cells[i].id == id)
                                return domain_error(e, -EINVAL, "guest NUMA cell %" PRIu64 " is defined twice", id);
                c->id = (uint32_t) id;
                snprintf(what, sizeof(what), "guest NUMA cell %" PRIu64 " memory", id);
                r = parse_scaled(attr(n, "memory"), attr(n, "unit"), what, &c->bytes, e);
                if (r < 0)
                        return r;
                d->n_cells++;
        }
        numa_cells = d->n_cells > 0;
        if (d->n_cells == 0) {
                if (!has_memory)
                        return domain_error(e, -EINVAL, "the domain has no <memory>");
                d->cells = calloc(1, sizeof(DomainCell));
                if (!d->cells)
                        return -ENOMEM;
                d->cells[0] = (DomainCell) { .id = 0, .bytes = memory };
                d->n_cells = 1;
        }
        for (size_t i = 0; i < d->n_cells; i++)
                if (d->cells[i].id >= d->n_cells)
                        return domain_error(e, -EINVAL, "guest NUMA cell id %" PRIu32 " is out of range: there are %zu cells",
                                            d->cells[i].id, d->n_cells);
        for (size_t i = 0; i < n_pages; i++)
                for (size_t j = d->n_cells; pages[i].has_nodeset && j < DOMAIN_CELLS_MAX; j++)
                        if (pages[i].cells[j])
                                return domain_error(e, -EINVAL, "<hugepages><page nodeset> names guest cell %zu, but "
                                                    "the guest has %zu cell%s", j, d->n_cells, d->n_cells > 1 ? "s" : "");

        /* Host placement. */
        tunes = calloc(1 + d->n_cells, sizeof(Tune));
        if (!tunes)
                return -ENOMEM;
        numatune = child(root, "numatune");
        for (n = numatune ? numatune->children : NULL; n; n = n->next) {
                Tune *t;
                const char *nodeset = attr(n, "nodeset");
                const char *placement = attr(n, "placement");
                char what[64];

                if (is_element(n, "memory")) {
                        t = &tunes[0];
                        snprintf(what, sizeof(what), "<numatune><memory>");
                        /* placement='auto' lets numad choose at start: any node may be it. */
                        if (placement && streq(placement, "auto"))
                                nodeset = NULL;
                } else if (is_element(n, "memnode")) {
                        uint64_t cellid;
                        if (parse_number(attr(n, "cellid"), &cellid) < 0 || cellid >= d->n_cells)
                                return domain_error(e, -EINVAL, "<numatune><memnode cellid='%s'> does not name a guest cell",
                                                    safe_text(b, attr(n, "cellid") ? attr(n, "cellid") : ""));
                        t = &tunes[1 + cellid];
                        snprintf(what, sizeof(what), "<numatune><memnode cellid='%" PRIu64 "'>", cellid);
                        if (!nodeset)
                                return domain_error(e, -EINVAL, "%s has no nodeset", what);
                } else
                        continue;
                if (t->present)
                        return domain_error(e, -EINVAL, "%s is given twice", what);
                t->present = true;
                if (nodeset) {
                        char w2[80];
                        snprintf(w2, sizeof(w2), "%s nodeset", what);
                        r = parse_nodeset(nodeset, t->nodes, DOMAIN_HOST_NODES_MAX, w2, e);
                        if (r < 0)
                                return r;
                }
                r = parse_mode(attr(n, "mode"), nodeset != NULL, &t->mode, &t->declared, what, e);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < d->n_cells; i++) {
                DomainCell *c = &d->cells[i];
                const Tune *t = tunes[1 + c->id].present ? &tunes[1 + c->id] : &tunes[0];

                c->page_size = cell_page_size(pages, n_pages, bare, c->id);
                if (c->page_size == 0)
                        d->uses_default = true;
                c->mode = t->present ? t->mode : NUMA_MODE_NONE;
                if (c->mode != NUMA_MODE_NONE) {
                        r = set_to_list(t->nodes, DOMAIN_HOST_NODES_MAX, &c->host_nodes, &c->n_host_nodes);
                        if (r < 0)
                                return r;
                }
        }

        /* Memory devices need the cells, their tunes and, for the cell-less guest, the device sizes first. */
        r = parse_devices(devices, d, hp != NULL, pages, n_pages, bare, tunes, &devices_total, e);
        if (r < 0)
                return r;
        if (!numa_cells) {
                /* Without <cpu><numa>, <memory> is the whole guest with its devices (virDomainDefGetMemoryInitial). */
                if (devices_total > d->cells[0].bytes)
                        return domain_error(e, -EINVAL, "the memory devices need more than <memory>");
                d->cells[0].bytes -= devices_total;
        }
        for (size_t i = 0; i < d->n_cells; i++)
                cells_total = d->cells[i].bytes > UINT64_MAX - cells_total ? UINT64_MAX : cells_total + d->cells[i].bytes;
        /* A <maxMemory> below what the guest has is libvirt's to refuse; it leaves no room here. */
        if (has_max && max_memory > cells_total && max_memory - cells_total > devices_total)
                d->hotplug_bytes = max_memory - cells_total - devices_total;
        *ret = TAKE_PTR(d);
        return 0;
}

/* Reached at "<!DOCTYPE x [": stops the parser before one entity declaration is read. */
static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id) {
        xmlParserCtxt *ctxt = ctx;
        *(bool *) ctxt->_private = true;
        xmlStopParser(ctxt);
}

int domain_parse(const char *buf, size_t len, DomainDef **ret, DomainError *e) {
        xmlParserCtxt *ctxt;
        xmlDoc *doc;
        bool doctype = false;
        int r;

        if (len > DOMAIN_XML_MAX)
                return domain_error(e, -EFBIG, "the domain XML is larger than %" PRIu64 " MiB", DOMAIN_XML_MAX >> 20);
        if (len > INT32_MAX)
                return -EFBIG;
        if (len == 0)
                return domain_error(e, -EINVAL, "the domain XML is empty");

        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        ctxt->_private = &doctype;
        ctxt->sax->internalSubset = on_internal_subset;
        /* No XML_PARSE_NOENT (no entity substitution), no DTDLOAD/DTDATTR/DTDVALID (no DTD is read), no HUGE
         * (libxml2 keeps its depth and size limits), NONET (nothing is fetched). */
        doc = xmlCtxtReadMemory(ctxt, buf, (int) len, "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
        if (doctype || (doc && (doc->intSubset || doc->extSubset))) {
                r = domain_error(e, -EINVAL, "the domain XML has a DOCTYPE; DTDs and entities are not allowed");
                goto finish;
        }
        if (!doc || !ctxt->wellFormed) {
                const xmlError *x = xmlCtxtGetLastError(ctxt);
                char msg[160];
                trimmed(msg, sizeof(msg), x && x->message ? x->message : "unknown error");
                r = domain_error(e, -EINVAL, "the domain XML is not well-formed: line %d: %s", x ? x->line : 0, msg);
                goto finish;
        }
        r = parse_tree(xmlDocGetRootElement(doc), ret, e);
finish:
        xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        return r;
}

