/* test_identity.c: the signed identity check: HMAC-SHA256 against RFC 4231's vectors and values
 * computed by Python's hmac module, the window's edges either way, and wrong, malformed and
 * tampered signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/identity.h"
#include "base/err.h"

#define SECRET "secret-of-the-site"
#define TS 1764100000
/* hmac.new(SECRET, b"42\nli@example.com\n1764100000\nnonce-0001", sha256).hexdigest() */
#define SIG "ac8f41e10d565ef7876404e218d295205a89cdfbb2c73938192e436f20a26500"
/* ... with the e-mail "" */
#define SIG_NO_EMAIL "c8e286dc5f09622c2d3307e224fddab02ac586e48a2f9eb422f9ed30af8ac57d"

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        size_t key_len;
        const char *data;
        const char *mac;
    } vectors[] = {
        /* test case 1: a 20-byte key of 0x0b */
        {"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20,
         "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        /* test case 2: a key shorter than the length of the hash */
        {"Jefe", 4, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[KF_IDENTITY_SIG_SIZE];
        assert_int_equal(kf_identity_hmac_hex(vectors[i].key, vectors[i].key_len, vectors[i].data,
                                              strlen(vectors[i].data), out),
                         0);
        assert_string_equal(out, vectors[i].mac);
    }
    /* test case 6: a 131-byte key of 0xaa (longer than the block: hashed first) */
    char key[131];
    memset(key, 0xaa, sizeof key);
    const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
    char out[KF_IDENTITY_SIG_SIZE];
    assert_int_equal(kf_identity_hmac_hex(key, sizeof key, data, strlen(data), out), 0);
    assert_string_equal(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_check_accepts(void **state)
{
    (void)state;
    assert_int_equal(kf_identity_check(SECRET, "42", "li@example.com", TS, "nonce-0001", SIG, TS),
                     0);
    assert_int_equal(kf_identity_check(SECRET, "42", "", TS, "nonce-0001", SIG_NO_EMAIL, TS + 10),
                     0);
    /* Hex in capitals is the same signature. */
    char upper[] = SIG;
    for (char *p = upper; *p != '\0'; p++) {
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    }
    assert_int_equal(kf_identity_check(SECRET, "42", "li@example.com", TS, "nonce-0001", upper, TS),
                     0);
}

static void test_check_window(void **state)
{
    (void)state;
    const int64_t w = KF_IDENTITY_WINDOW_S;
    static const struct {
        int64_t now;
        int rc;
    } cases[] = {
        {TS - KF_IDENTITY_WINDOW_S, 0},               /* signed on a clock 5 minutes ahead */
        {TS - KF_IDENTITY_WINDOW_S - 1, KF_EEXPIRED}, /* ... a second more */
        {TS + KF_IDENTITY_WINDOW_S, 0},               /* used 5 minutes after */
        {TS + KF_IDENTITY_WINDOW_S + 1, KF_EEXPIRED}, /* ... a second later */
        {TS + 86400, KF_EEXPIRED},
        {0, KF_EEXPIRED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(
            kf_identity_check(SECRET, "42", "li@example.com", TS, "nonce-0001", SIG, cases[i].now),
            cases[i].rc);
    assert_int_equal(w, 300);
}

static void test_check_refuses(void **state)
{
    (void)state;
    /* Any field changed, the wrong secret, a cut or padded or non-hex signature: bad. A forged
     * signature is bad even when its time is stale too (the signature is checked first). */
    static const struct {
        const char *secret, *user_id, *email, *nonce, *sig;
        int64_t ts;
    } cases[] = {
        {"other secret", "42", "li@example.com", "nonce-0001", SIG, TS},
        {SECRET, "43", "li@example.com", "nonce-0001", SIG, TS},
        {SECRET, "42", "lu@example.com", "nonce-0001", SIG, TS},
        {SECRET, "42", "li@example.com", "nonce-0002", SIG, TS},
        {SECRET, "42", "li@example.com", "nonce-0001", SIG, TS + 1},
        {SECRET, "42\nli@example.com", "", "nonce-0001", SIG, TS},
        {SECRET, "42", "li@example.com", "nonce-0001", "", TS},
        {SECRET, "42", "li@example.com", "nonce-0001", "ac8f41e1", TS},
        {SECRET, "42", "li@example.com", "nonce-0001", SIG "00", TS},
        {SECRET, "42", "li@example.com", "nonce-0001",
         "zc8f41e10d565ef7876404e218d295205a89cdfbb2c73938192e436f20a26500", TS},
        {SECRET, "42", "li@example.com", "nonce-0001",
         "bc8f41e10d565ef7876404e218d295205a89cdfbb2c73938192e436f20a26500", TS},
        {SECRET, "42", "li@example.com", "nonce-0001",
         "bc8f41e10d565ef7876404e218d295205a89cdfbb2c73938192e436f20a26500", TS - 100000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(kf_identity_check(cases[i].secret, cases[i].user_id, cases[i].email,
                                           cases[i].ts, cases[i].nonce, cases[i].sig, TS),
                         KF_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_check_accepts),
        cmocka_unit_test(test_check_window),
        cmocka_unit_test(test_check_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
