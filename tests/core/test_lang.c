/* lang: canonical names, aliases, case and white space, and the SDK's refusal text. */
#include "check.h"
#include "lang.h"

static cp_lang parse(const char *s)
{
    return cp_lang_parse(s, strlen(s));
}

TEST(lang_canonical_names_and_aliases)
{
    CHECK_INT(parse("python"), CP_LANG_PYTHON);
    CHECK_INT(parse("py"), CP_LANG_PYTHON);
    CHECK_INT(parse("python3"), CP_LANG_PYTHON);
    CHECK_INT(parse("javascript"), CP_LANG_JAVASCRIPT);
    CHECK_INT(parse("js"), CP_LANG_JAVASCRIPT);
    CHECK_INT(parse("node"), CP_LANG_JAVASCRIPT);
    CHECK_INT(parse("nodejs"), CP_LANG_JAVASCRIPT);
    CHECK_INT(parse("java"), CP_LANG_JAVA);
    CHECK_INT(parse("r"), CP_LANG_R);
}

TEST(lang_case_and_surrounding_white_space_are_ignored)
{
    CHECK_INT(parse("PYTHON"), CP_LANG_PYTHON);
    CHECK_INT(parse("Python3"), CP_LANG_PYTHON);
    CHECK_INT(parse("  JavaScript\t\n"), CP_LANG_JAVASCRIPT);
    CHECK_INT(parse(" R "), CP_LANG_R);
    CHECK_INT(parse("NodeJS"), CP_LANG_JAVASCRIPT);
}

TEST(lang_everything_else_is_unsupported)
{
    const char *bad[] = {"", "   ", "ruby", "bash", "ts", "python 3", "pyth", "../../bin/sh",
                         "python;id", "pyth\xD0\xBEn" /* Cyrillic o */, "javascriptx", "rr"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_INT(parse(bad[i]), CP_LANG_NONE);
    CHECK_INT(cp_lang_parse("python", 3), CP_LANG_NONE); /* length is honoured: "pyt" */
    CHECK_INT(cp_lang_parse("pyXXX", 2), CP_LANG_PYTHON);
    CHECK_INT(cp_lang_parse(NULL, 0), CP_LANG_NONE);
}

TEST(lang_names_are_canonical)
{
    CHECK_STR(cp_lang_name(CP_LANG_PYTHON), "python");
    CHECK_STR(cp_lang_name(CP_LANG_JAVASCRIPT), "javascript");
    CHECK_STR(cp_lang_name(CP_LANG_JAVA), "java");
    CHECK_STR(cp_lang_name(CP_LANG_R), "r");
    CHECK_STR(cp_lang_name(CP_LANG_NONE), NULL);
    CHECK_STR(cp_lang_supported_list(), "java, javascript, python, r");
}

TEST(lang_unsupported_message_echoes_the_raw_name_in_ts_wording)
{
    char buf[256];
    size_t n = cp_lang_unsupported_message(" Ruby ", 6, buf, sizeof buf);
    CHECK_STR(buf, "Unsupported language:  Ruby . Supported: java, javascript, python, r");
    CHECK_INT(n, strlen(buf));
    cp_lang_unsupported_message("", 0, buf, sizeof buf);
    CHECK_STR(buf, "Unsupported language: . Supported: java, javascript, python, r");
}

TEST(lang_unsupported_message_cuts_long_names_on_a_character_boundary)
{
    char raw[100], buf[256];
    memset(raw, 'x', 63);
    memcpy(raw + 63, "\xC3\xA9", 2); /* é straddles the 64-byte cut */
    memset(raw + 65, 'y', 35);
    cp_lang_unsupported_message(raw, 100, buf, sizeof buf);
    char want[256] = "Unsupported language: ";
    strncat(want, raw, 63);
    strcat(want, ".... Supported: java, javascript, python, r");
    CHECK_STR(buf, want);
}

TEST(lang_unsupported_message_respects_a_small_buffer)
{
    char buf[10];
    size_t n = cp_lang_unsupported_message("ruby", 4, buf, sizeof buf);
    CHECK_STR(buf, "Unsupport");
    CHECK_INT(n, 9);
}
