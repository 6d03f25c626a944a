/* codepane core test runner: runs every registered test (or those whose name contains
 * argv[1]) and ends with the line "N passed, N failed". Exit status 1 on any failure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

#define MAX_TESTS 1024

static struct {
    const char *name;
    cp_test_fn fn;
} tests[MAX_TESTS];
static size_t ntests;
static int current_failures;

void cp_test_register(const char *name, cp_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many tests: raise MAX_TESTS in %s\n", __FILE__);
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void cp_check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failures++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    qsort(tests, ntests, sizeof tests[0], by_name);
    for (size_t i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        current_failures = 0;
        tests[i].fn();
        if (current_failures) {
            fprintf(stderr, "FAIL %s\n", tests[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    fflush(stderr);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
