/* testutil.h — small helpers shared by the cmocka unit tests (header only). */
#ifndef TISIM_TESTUTIL_H
#define TISIM_TESTUTIL_H

#include <string.h>

/* Fails the test, showing both strings, unless needle occurs in hay. */
#define assert_contains(hay, needle)                                                          \
    do {                                                                                      \
        if (strstr((hay), (needle)) == NULL) {                                                \
            print_error("expected \"%s\" in \"%s\"\n", (needle), (hay));                      \
            fail();                                                                           \
        }                                                                                     \
    } while (0)

#endif
