/* codepane core tests: a tiny registry and exact-outcome assertions.
 * TEST(name) { ... } defines and registers a test; CHECK* record a failure with file and
 * line and go on, so one run reports every broken expectation of a test. */
#ifndef CP_CHECK_H
#define CP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef void (*cp_test_fn)(void);
void cp_test_register(const char *name, cp_test_fn fn);
void cp_check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                       \
    static void name(void);                                                              \
    __attribute__((constructor)) static void register_##name(void)                       \
    {                                                                                    \
        cp_test_register(#name, name);                                                   \
    }                                                                                    \
    static void name(void)

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) cp_check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);             \
    } while (0)

#define CHECK_INT(actual, expected)                                                      \
    do {                                                                                 \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                  \
        if (a_ != e_)                                                                    \
            cp_check_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #actual, a_, e_); \
    } while (0)

#define CHECK_DBL(actual, expected)                                                      \
    do {                                                                                 \
        double a_ = (double)(actual), e_ = (double)(expected);                           \
        if (a_ != e_)                                                                    \
            cp_check_fail(__FILE__, __LINE__, "%s == %.17g, expected %.17g", #actual, a_, e_); \
    } while (0)

/* Exact string equality; a NULL actual fails unless expected is NULL too. */
#define CHECK_STR(actual, expected)                                                      \
    do {                                                                                 \
        const char *a_ = (actual), *e_ = (expected);                                     \
        if (!((a_ == NULL && e_ == NULL) || (a_ && e_ && strcmp(a_, e_) == 0)))          \
            cp_check_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #actual,  \
                          a_ ? a_ : "(null)", e_ ? e_ : "(null)");                       \
    } while (0)

/* Exact byte equality of a (ptr, len) pair against a byte array of known size. */
#define CHECK_MEM(ptr, len, expected, explen)                                            \
    do {                                                                                 \
        size_t l_ = (len), el_ = (explen);                                               \
        if (l_ != el_ || memcmp((ptr), (expected), el_) != 0)                            \
            cp_check_fail(__FILE__, __LINE__, "%s: %zu bytes differ from %zu expected",  \
                          #ptr, l_, el_);                                                \
    } while (0)

#endif
