/* store_suite_attachments.c: the store suite's attachment tests (store.h, message_add with an
 * attachment, and attachment_get): a file and its message commit together, every message read
 * carries the file's fields, the bytes come back as they went in (after a restart too), the same
 * bytes twice are two attachments of one blob, and what message_add refuses leaves nothing. */
#include "store_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* attachment_get's result, copied. */
typedef struct got {
    int rc;
    kf_attachment_t attachment; /* strings and bytes point into the fields below */
    char name[256];
    char type[128];
    char sha256[65];
    unsigned char bytes[256];
} got_t;

static void on_attachment(void *ctx, const kf_store_result_t *r)
{
    got_t *got = ctx;
    got->rc = r->rc;
    if (r->rc != 0)
        return;
    assert_non_null(r->attachment);
    got->attachment = *r->attachment;
    assert_true(r->attachment->size >= 0 && (size_t)r->attachment->size <= sizeof got->bytes);
    memcpy(got->bytes, r->attachment->bytes, (size_t)r->attachment->size);
    snprintf(got->name, sizeof got->name, "%s", r->attachment->name);
    snprintf(got->type, sizeof got->type, "%s", r->attachment->type);
    snprintf(got->sha256, sizeof got->sha256, "%s", r->attachment->sha256);
    got->attachment.name = got->name;
    got->attachment.type = got->type;
    got->attachment.sha256 = got->sha256;
    got->attachment.bytes = got->bytes;
}

static got_t get(suite_fixture_t *f, int64_t id)
{
    got_t got = {.rc = 1};
    assert_int_equal(f->store->ops->attachment_get(f->store, id, on_attachment, &got), 0);
    suite_flush(f);
    assert_int_not_equal(got.rc, 1); /* done ran */
    return got;
}

static const char PNG[] = "\x89PNG\r\n\x1a\n-a-tiny-picture";

static kf_attachment_new_t png(const char *name)
{
    return (kf_attachment_new_t){
        .name = name, .type = "image/png", .bytes = PNG, .size = sizeof PNG - 1};
}

static void test_attachment_with_its_message(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-v", "Vera");
    seen_t *seen = seen_new();
    kf_attachment_new_t file = png("收据.png");
    kf_message_new_t m = {.visitor_id = visitor,
                          .sender = KF_SENDER_VISITOR,
                          .body = "收据.png",
                          .now = SUITE_NOW,
                          .attachment = &file};
    assert_int_equal(suite_send(f, seen, &m), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->conversation_opened);
    assert_true(r->has_message);
    const kf_message_t *sent = &r->message;
    assert_true(sent->attachment_id > 0);
    assert_string_equal(sent->attachment_name, "收据.png");
    assert_string_equal(sent->attachment_type, "image/png");
    assert_int_equal(sent->attachment_size, sizeof PNG - 1);
    int64_t conversation = sent->conversation_id;
    int64_t attachment_id = sent->attachment_id;

    /* Every read of messages carries it: the conversation's, the visitor's, the newest. */
    seen_t *list = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_of_visitor(f->store, visitor, 0, 10,
                                                                   on_message, on_done, list),
                                list),
                     0);
    assert_int_equal(list->message_count, 1);
    assert_int_equal(list->messages[0].attachment_id, attachment_id);
    assert_string_equal(list->messages[0].attachment_name, "收据.png");
    assert_int_equal(list->messages[0].attachment_size, sizeof PNG - 1);
    seen_free(list);
    seen_t *got_conversation = suite_get_conversation(f, conversation);
    const kf_conversation_t *c = &last_result(got_conversation)->conversation;
    assert_true(c->has_last_message);
    assert_int_equal(c->last_message.attachment_id, attachment_id);
    assert_string_equal(c->last_message.attachment_type, "image/png");
    seen_free(got_conversation);
    /* A message without one says so. */
    suite_add_message(f, conversation, 0, "and a word");
    list = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_in_conversation(
                                    f->store, conversation, 0, 10, on_message, on_done, list),
                                list),
                     0);
    assert_int_equal(list->message_count, 2);
    assert_int_equal(list->messages[1].attachment_id, 0);
    assert_string_equal(list->messages[1].attachment_name, "");
    seen_free(list);

    /* The file: whose it is, and its bytes, also after a restart. */
    for (int round = 0; round < 2; round++) {
        got_t got = get(f, attachment_id);
        assert_int_equal(got.rc, 0);
        assert_int_equal(got.attachment.id, attachment_id);
        assert_int_equal(got.attachment.conversation_id, conversation);
        assert_int_equal(got.attachment.visitor_id, visitor);
        assert_int_equal(got.attachment.message_id, sent->id);
        assert_false(got.attachment.is_private);
        assert_int_equal(got.attachment.sender, KF_SENDER_VISITOR);
        assert_int_equal(got.attachment.uploader_id, 0);
        assert_string_equal(got.attachment.name, "收据.png");
        assert_string_equal(got.attachment.type, "image/png");
        assert_int_equal(got.attachment.size, sizeof PNG - 1);
        assert_int_equal(strlen(got.attachment.sha256), 64);
        assert_memory_equal(got.bytes, PNG, sizeof PNG - 1);
        assert_int_equal(got.attachment.created_at, SUITE_NOW);
        suite_reopen(f);
    }
    assert_int_equal(get(f, attachment_id + 100).rc, KF_ENOTFOUND);
    seen_free(seen);
}

static void test_attachment_same_bytes_twice(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-v", "Vera");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    seen_t *seen = seen_new();
    int64_t ids[2];
    const char *names[2] = {"a.png", "b.png"};
    for (int i = 0; i < 2; i++) {
        kf_attachment_new_t file = png(names[i]);
        kf_message_new_t m = {.conversation_id = conversation,
                              .sender = KF_SENDER_AGENT,
                              .agent_id = ana,
                              .body = names[i],
                              .now = SUITE_NOW + i,
                              .attachment = &file};
        assert_int_equal(suite_send(f, seen, &m), 0);
        ids[i] = last_result(seen)->message.attachment_id;
        assert_string_equal(last_result(seen)->message.agent_name, "Ana");
    }
    assert_true(ids[1] > ids[0]);
    got_t first = get(f, ids[0]);
    got_t second = get(f, ids[1]);
    assert_int_equal(first.rc, 0);
    assert_int_equal(second.rc, 0);
    assert_string_equal(first.attachment.sha256, second.attachment.sha256);
    assert_string_equal(second.attachment.name, "b.png");
    assert_int_equal(second.attachment.sender, KF_SENDER_AGENT);
    assert_int_equal(second.attachment.uploader_id, ana);
    seen_free(seen);
}

static void test_attachment_refused(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-v", "Vera");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    seen_t *seen = seen_new();
    char long_name[257];
    memset(long_name, 'x', 256);
    long_name[256] = '\0';
    kf_attachment_new_t bad[] = {
        {.name = "a.png", .type = "image/png", .bytes = PNG, .size = 0},
        {.name = "", .type = "image/png", .bytes = PNG, .size = 4},
        {.name = long_name, .type = "image/png", .bytes = PNG, .size = 4},
        {.name = "a.png", .type = "", .bytes = PNG, .size = 4},
        {.name = "a.png", .type = "image/png", .bytes = NULL, .size = 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kf_message_new_t m = {.conversation_id = conversation,
                              .sender = KF_SENDER_AGENT,
                              .agent_id = ana,
                              .body = "x",
                              .now = SUITE_NOW,
                              .attachment = &bad[i]};
        assert_int_equal(f->store->ops->message_add(f->store, &m, on_done, seen), KF_EINVAL);
    }
    kf_attachment_new_t file = png("a.png");
    kf_message_new_t keyed = {.visitor_id = visitor,
                              .sender = KF_SENDER_VISITOR,
                              .body = "a.png",
                              .now = SUITE_NOW,
                              .idempotency_key = "k1",
                              .attachment = &file};
    assert_int_equal(f->store->ops->message_add(f->store, &keyed, on_done, seen), KF_EINVAL);
    kf_message_new_t note = {.conversation_id = conversation,
                             .sender = KF_SENDER_AGENT,
                             .agent_id = ana,
                             .body = "a.png",
                             .now = SUITE_NOW,
                             .is_private = true,
                             .attachment = &file};
    assert_int_equal(f->store->ops->message_add(f->store, &note, on_done, seen), KF_EINVAL);
    /* An unknown conversation: the message fails, and no attachment row stays behind. */
    kf_message_new_t lost = {.conversation_id = conversation + 100,
                             .sender = KF_SENDER_AGENT,
                             .agent_id = ana,
                             .body = "a.png",
                             .now = SUITE_NOW,
                             .attachment = &file};
    assert_int_equal(suite_send(f, seen, &lost), KF_ENOTFOUND);
    assert_int_equal(get(f, 1).rc, KF_ENOTFOUND);
    assert_int_equal(suite_message_count(f), 1);
    seen_free(seen);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_attachment_tests[] = {
    SUITE_TEST(test_attachment_with_its_message),
    SUITE_TEST(test_attachment_same_bytes_twice),
    SUITE_TEST(test_attachment_refused),
};

const size_t store_suite_attachment_test_count =
    sizeof store_suite_attachment_tests / sizeof store_suite_attachment_tests[0];
