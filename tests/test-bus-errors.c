/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mapping of core errors and bare errnos to D-Bus error names. */
#include <errno.h>
#include <glib.h>

#include "bus-errors.h"

static void test_bare_errno_never_becomes_a_named_error(void) {
        static const struct {
                int r;
                const char *name;
        } cases[] = {
                { -ENOMEM, SD_BUS_ERROR_NO_MEMORY },   /* the map says InsufficientPages for ENOMEM */
                { -ENXIO, SD_BUS_ERROR_INVALID_ARGS }, /* ... and NoSuchNode for ENXIO */
                { -EBADMSG, SD_BUS_ERROR_INVALID_ARGS },
                { -EINVAL, SD_BUS_ERROR_INVALID_ARGS },
                { -ENOENT, SD_BUS_ERROR_FAILED },      /* ... and NoSuchReservation for ENOENT */
                { -EEXIST, SD_BUS_ERROR_FAILED },
                { -EDQUOT, SD_BUS_ERROR_FAILED },
                { -EOPNOTSUPP, SD_BUS_ERROR_FAILED },
        };

        g_assert_cmpint(sd_bus_error_add_map(hugepaged_error_map), >=, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                g_assert_cmpint(bus_method_result(&e, cases[i].r), <, 0);
                g_assert_cmpstr(e.name, ==, cases[i].name);
                sd_bus_error_free(&e);
        }
}

static void test_set_errors_and_success_pass_through(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        HpError hp = {};

        g_assert_cmpint(bus_method_result(&e, 1), ==, 1);
        g_assert_false(sd_bus_error_is_set(&e));

        hp_error_set(&hp, HP_ERROR_INSUFFICIENT_PAGES, "the kernel gave %d of %d pages", 1500, 2048);
        g_assert_cmpint(bus_error_from_hp(&e, &hp), <, 0);
        g_assert_cmpint(bus_method_result(&e, -ENOMEM), <, 0);
        g_assert_cmpstr(e.name, ==, BUS_ERROR_INSUFFICIENT_PAGES);
        g_assert_cmpstr(e.message, ==, "the kernel gave 1500 of 2048 pages");
        sd_bus_error_free(&e);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-errors/bare-errno", test_bare_errno_never_becomes_a_named_error);
        g_test_add_func("/bus-errors/pass-through", test_set_errors_and_success_pass_through);
        return g_test_run();
}
