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

#include "domain.h"
#include "macro.h"

static int domain_error(DomainError *e, int r, const char *fmt, ...) _printf_(3, 4);
static int domain_error(DomainError *e, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return r;
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
        NumaMode mode;
        uint8_t nodes[DOMAIN_HOST_NODES_MAX];
} Tune;

static int parse_mode(const char *s, bool have_nodeset, NumaMode *ret, const char *what, DomainError *e) {
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
 * ordinary memory. */
static uint64_t cell_page_size(const Page *pages, size_t n_pages, bool bare, uint32_t cell) {
        const Page *fallback = NULL;
        if (bare)
                return 0;
        for (size_t i = 0; i < n_pages; i++) {
                if (!pages[i].has_nodeset)
                        fallback = &pages[i];
                else if (pages[i].cells[cell])
                        return pages[i].size;
        }
        return fallback ? fallback->size : DOMAIN_PAGE_NONE;
}

static int parse_tree(xmlNode *root, DomainDef **ret, DomainError *e) {
        _cleanup_(domain_def_freep) DomainDef *d = NULL;
        _cleanup_free_ Page *pages = NULL;
        _cleanup_free_ Tune *tunes = NULL; /* [0]: <memory>, [1 + i]: <memnode cellid=i> */
        xmlNode *n, *backing, *hp, *numa, *numatune;
        size_t n_pages = 0;
        bool bare = false;
        uint64_t memory = 0;
        bool has_memory = false;
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

        backing = child(root, "memoryBacking");
        hp = child(backing, "hugepages");
        if (!hp) {
                *ret = TAKE_PTR(d);
                return 0;
        }
        d->hugepages = true;

        n = child(root, "uuid");
        r = parse_uuid(n ? text(n) : NULL, d->uuid, e);
        if (r < 0)
                return r;

        n = child(root, "memory");
        if (n) {
                r = parse_scaled(text(n), attr(n, "unit"), "<memory>", &memory, e);
                if (r < 0)
                        return r;
                has_memory = true;
        }

        /* <hugepages> with no <page> means the default size for all memory. */
        pages = calloc(DOMAIN_PAGES_MAX, sizeof(Page));
        if (!pages)
                return -ENOMEM;
        for (n = hp->children; n; n = n->next) {
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
        bare = n_pages == 0;

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
                r = parse_mode(attr(n, "mode"), nodeset != NULL, &t->mode, what, e);
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

/* ---- from cells to reservations -------------------------------------------------------------------- */

void page_size_suffix(char buf[static 24], uint64_t page_size) {
        static const char units[] = "KMGTPE";
        uint64_t v = page_size;
        int i = -1;

        while (v >= 1024 && v % 1024 == 0 && i + 1 < (int) sizeof(units) - 1) {
                v /= 1024;
                i++;
        }
        if (i < 0)
                snprintf(buf, 24, "%" PRIu64 "B", v);
        else
                snprintf(buf, 24, "%" PRIu64 "%c", v, units[i]);
}

static void hook_reservation_done(HookReservation *r) {
        free(r->nodes);
        free(r->node_pages);
}

DomainNeeds *domain_needs_free(DomainNeeds *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_reservations; i++)
                hook_reservation_done(&n->reservations[i]);
        free(n->reservations);
        free(n);
        return NULL;
}

static void domain_needs_freep(DomainNeeds **n) {
        domain_needs_free(*n);
}

static int add_pages(uint64_t *sum, uint64_t pages, uint64_t page_size, DomainError *e) {
        if (pages > UINT64_MAX - *sum || *sum + pages > UINT64_MAX / page_size)
                return domain_error(e, -ERANGE, "the guest needs more than 2^64 bytes of %" PRIu64 "-byte pages", page_size);
        *sum += pages;
        return 0;
}

static HookReservation *needs_append(DomainNeeds *n) {
        HookReservation *t = realloc(n->reservations, (n->n_reservations + 1) * sizeof(*t));
        if (!t)
                return NULL;
        n->reservations = t;
        t = &t[n->n_reservations++];
        *t = (HookReservation) {};
        return t;
}

static bool cell_is_exact(const DomainCell *c) {
        return c->mode == NUMA_MODE_STRICT && c->n_host_nodes == 1;
}

static bool cell_is_any(const DomainCell *c) {
        return c->mode == NUMA_MODE_NONE || c->mode == NUMA_MODE_PREFERRED;
}

static bool same_nodes(const DomainCell *a, const DomainCell *b) {
        return a->n_host_nodes == b->n_host_nodes &&
               memcmp(a->host_nodes, b->host_nodes, a->n_host_nodes * sizeof(uint32_t)) == 0;
}

/* Placement per cell: strict on one node -> exact pages there; strict on several, interleave, restrictive -> any
 * of those nodes; preferred, placement='auto' or no numatune -> any node (the kernel may fall back to any). */
int domain_compute(const DomainDef *d, uint64_t default_page_size, uint64_t base_page_size, DomainNeeds **ret,
                   DomainError *e) {
        _cleanup_(domain_needs_freep) DomainNeeds *needs = NULL;
        _cleanup_free_ uint64_t *sizes = NULL;
        _cleanup_free_ uint64_t *cell_pages = NULL;
        _cleanup_free_ uint64_t *cell_size = NULL;
        size_t n_sizes = 0;
        int r;

        needs = calloc(1, sizeof(*needs));
        if (!needs)
                return -ENOMEM;
        if (!d->hugepages) {
                *ret = TAKE_PTR(needs);
                return 0;
        }
        if (d->uses_default && (default_page_size == 0 || (default_page_size & (default_page_size - 1)) != 0))
                return domain_error(e, -EINVAL, "the host's default huge page size is unknown");

        sizes = calloc(d->n_cells, sizeof(uint64_t));
        cell_pages = calloc(d->n_cells, sizeof(uint64_t));
        cell_size = calloc(d->n_cells, sizeof(uint64_t));
        if (!sizes || !cell_pages || !cell_size)
                return -ENOMEM;

        for (size_t i = 0; i < d->n_cells; i++) {
                const DomainCell *c = &d->cells[i];
                uint64_t ps = c->page_size == 0 ? default_page_size : c->page_size;
                bool known = false;

                if (c->page_size == DOMAIN_PAGE_NONE || ps == base_page_size)
                        continue; /* ordinary memory */
                if (c->bytes == 0)
                        return domain_error(e, -EINVAL, "guest NUMA cell %" PRIu32 " has no memory", c->id);
                cell_size[i] = ps;
                cell_pages[i] = c->bytes / ps + (c->bytes % ps != 0);
                for (size_t j = 0; j < n_sizes; j++)
                        known = known || sizes[j] == ps;
                if (!known)
                        sizes[n_sizes++] = ps;
        }
        /* Ascending page sizes; a handful at most. */
        for (size_t i = 1; i < n_sizes; i++)
                for (size_t j = i; j > 0 && sizes[j - 1] > sizes[j]; j--) {
                        uint64_t t = sizes[j];
                        sizes[j] = sizes[j - 1];
                        sizes[j - 1] = t;
                }

        for (size_t s = 0; s < n_sizes; s++) {
                uint64_t ps = sizes[s];
                size_t first = needs->n_reservations;
                HookReservation *res;
                _cleanup_free_ uint8_t *done = calloc(d->n_cells, 1);

                if (!done)
                        return -ENOMEM;

                /* Exact: every strict single-node cell, summed per node. */
                for (size_t i = 0; i < d->n_cells; i++) {
                        const DomainCell *c = &d->cells[i];
                        size_t k;
                        if (cell_size[i] != ps || !cell_is_exact(c))
                                continue;
                        if (needs->n_reservations == first || needs->reservations[first].kind != PLACEMENT_EXACT) {
                                if (!(res = needs_append(needs)))
                                        return -ENOMEM;
                                *res = (HookReservation) { .page_size = ps, .kind = PLACEMENT_EXACT };
                        }
                        res = &needs->reservations[first];
                        for (k = 0; k < res->n_node_pages && res->node_pages[k].node != c->host_nodes[0]; k++)
                                ;
                        if (k == res->n_node_pages) {
                                NodeAmount *t = realloc(res->node_pages, (k + 1) * sizeof(*t));
                                if (!t)
                                        return -ENOMEM;
                                res->node_pages = t;
                                /* Insertion keeps them ascending. */
                                while (k > 0 && t[k - 1].node > c->host_nodes[0]) {
                                        t[k] = t[k - 1];
                                        k--;
                                }
                                t[k] = (NodeAmount) { c->host_nodes[0], 0 };
                                res->n_node_pages++;
                        }
                        r = add_pages(&res->node_pages[k].amount, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        r = add_pages(&res->pages, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        done[i] = 1;
                }

                /* Node lists: cells with the same host nodes share a reservation, in the order they come. */
                for (size_t i = 0; i < d->n_cells; i++) {
                        const DomainCell *c = &d->cells[i];
                        if (cell_size[i] != ps || done[i] || cell_is_exact(c) || cell_is_any(c))
                                continue;
                        if (!(res = needs_append(needs)))
                                return -ENOMEM;
                        res->page_size = ps;
                        res->kind = PLACEMENT_NODES;
                        res->nodes = malloc(c->n_host_nodes * sizeof(uint32_t));
                        if (!res->nodes)
                                return -ENOMEM;
                        memcpy(res->nodes, c->host_nodes, c->n_host_nodes * sizeof(uint32_t));
                        res->n_nodes = c->n_host_nodes;
                        for (size_t j = i; j < d->n_cells; j++)
                                if (cell_size[j] == ps && !done[j] && !cell_is_exact(&d->cells[j]) &&
                                    !cell_is_any(&d->cells[j]) && same_nodes(c, &d->cells[j])) {
                                        r = add_pages(&res->pages, cell_pages[j], ps, e);
                                        if (r < 0)
                                                return r;
                                        done[j] = 1;
                                }
                }

                /* Anywhere. */
                for (size_t i = 0; i < d->n_cells; i++) {
                        if (cell_size[i] != ps || done[i])
                                continue;
                        if (needs->n_reservations == first || needs->reservations[needs->n_reservations - 1].kind != PLACEMENT_ANY) {
                                if (!(res = needs_append(needs)))
                                        return -ENOMEM;
                                *res = (HookReservation) { .page_size = ps, .kind = PLACEMENT_ANY };
                        }
                        res = &needs->reservations[needs->n_reservations - 1];
                        r = add_pages(&res->pages, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        done[i] = 1;
                }

                /* Names: the domain's UUID for the first of all, "UUID:<size>" for the first of another size,
                 * "UUID:<size>.<n>" for the n-th more of one size. */
                for (size_t i = first; i < needs->n_reservations; i++) {
                        char suffix[24];
                        page_size_suffix(suffix, ps);
                        if (i == 0)
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s", d->uuid);
                        else if (i == first)
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s:%s",
                                         d->uuid, suffix);
                        else
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s:%s.%zu",
                                         d->uuid, suffix, i - first);
                }
        }
        *ret = TAKE_PTR(needs);
        return 0;
}

char *domain_needs_format(const DomainNeeds *n) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        if (n->n_reservations == 0)
                fputs("no huge pages\n", f);
        for (size_t i = 0; i < n->n_reservations; i++) {
                const HookReservation *r = &n->reservations[i];
                fprintf(f, "%s page_size=%" PRIu64 " pages=%" PRIu64 " ", r->name, r->page_size, r->pages);
                if (r->kind == PLACEMENT_ANY)
                        fputs("any", f);
                else if (r->kind == PLACEMENT_NODES) {
                        fputs("nodes=", f);
                        for (size_t j = 0; j < r->n_nodes; j++)
                                fprintf(f, "%s%" PRIu32, j ? "," : "", r->nodes[j]);
                } else {
                        fputs("node_pages=", f);
                        for (size_t j = 0; j < r->n_node_pages; j++)
                                fprintf(f, "%s%" PRIu32 ":%" PRIu64, j ? "," : "", r->node_pages[j].node,
                                        r->node_pages[j].amount);
                }
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
