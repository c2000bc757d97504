/* fill.c: see fill.h. */
#include "load/fill.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "load/tool.h"
#include "store/sqlite_internal.h" /* KF_SQLITE_MESSAGE_STAMP */

double fill_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fill_die(const char *what, sqlite3 *db)
{
    load_progress("%s%s%s", what, db != NULL ? ": " : "", db != NULL ? sqlite3_errmsg(db) : "");
    exit(1);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

uint32_t fill_random(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 33) % n;
}

/* Words of a shop's support chat. */
static const char *const zh_words[] = {
    "退款", "物流", "订单", "发货", "快递", "地址", "价格", "优惠",   "质量", "客服",
    "退货", "换货", "尺码", "颜色", "库存", "付款", "发票", "包装",   "破损", "签收",
    "取消", "修改", "查询", "等待", "耳机", "手机", "衣服", "鞋子",   "电脑", "充电器",
    "今天", "明天", "昨天", "已经", "还没", "什么", "时候", "为什么", "可以", "不能",
    "谢谢", "你好", "请问", "麻烦", "帮我", "一下", "我的", "我要",   "我们", "商品",
    "信息", "问题", "申请", "审核", "通过", "单号", "运费", "保修",   "维修", "售后",
};
static const char *const zh_particles[] = {"了", "吗", "的", "呢", "，", "。", "？", "！", "吧"};
static const char *const en_words[] = {
    "refund",   "delivery", "order",   "invoice",  "parcel",    "tracking", "address",    "price",
    "discount", "quality",  "return",  "exchange", "size",      "colour",   "stock",      "payment",
    "package",  "damaged",  "signed",  "cancel",   "change",    "please",   "thanks",     "hello",
    "when",     "why",      "can",     "you",      "help",      "my",       "the",        "is",
    "not",      "yet",      "arrived", "week",     "yesterday", "today",    "headphones", "phone",
    "shoes",    "laptop",   "charger", "warranty", "repair",    "number",   "shipping",   "status",
    "still",    "waiting",  "broken",  "wrong",    "item",
};
static const char *const names[] = {"Wang", "Li",    "Zhang", "Liu",   "Chen", "Anna",
                                    "Olga", "Maria", "John",  "Ahmed", "Yuki", "Min-jun"};
static const char *const zh_names[] = {"王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

size_t fill_message_body(char *out, size_t size)
{
    size_t len = 0;
    uint32_t kind = fill_random(10);
    uint32_t words = 3 + fill_random(12);
    out[0] = '\0';
    for (uint32_t i = 0; i < words && len + 32 < size; i++) {
        bool zh = kind < 5 || (kind >= 8 && fill_random(2) == 0);
        const char *w =
            zh ? zh_words[fill_random(COUNT(zh_words))] : en_words[fill_random(COUNT(en_words))];
        len += (size_t)snprintf(out + len, size - len, "%s%s", !zh && len > 0 ? " " : "", w);
        if (zh && fill_random(4) == 0)
            len += (size_t)snprintf(out + len, size - len, "%s",
                                    zh_particles[fill_random(COUNT(zh_particles))]);
    }
    if (fill_random(50) == 0 && len + 12 < size)
        len += (size_t)snprintf(out + len, size - len, " SF%07" PRIu32, fill_random(10000000));
    return len;
}

void fill_visitor_name(char *out, size_t size)
{
    const char *latin = names[fill_random(COUNT(names))];
    if (fill_random(3) == 0)
        snprintf(out, size, "%s %s", latin, zh_names[fill_random(COUNT(zh_names))]);
    else
        snprintf(out, size, "%s", latin);
}

void fill_exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fill_die(sql, db);
}

sqlite3_stmt *fill_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fill_die(sql, db);
    return st;
}

void fill_step(sqlite3 *db, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        fill_die("step", db);
    sqlite3_reset(st);
}

sqlite3_stmt *fill_prepare_stamp(sqlite3 *db)
{
    return fill_prepare(db, KF_SQLITE_MESSAGE_STAMP);
}

void fill_stamp(sqlite3 *db, sqlite3_stmt *stamp, int64_t conversation_id, int64_t created_at,
                int sender, bool note, int64_t agent_id)
{
    sqlite3_bind_int64(stamp, 1, conversation_id);
    sqlite3_bind_int64(stamp, 2, sqlite3_last_insert_rowid(db));
    sqlite3_bind_int64(stamp, 3, created_at);
    sqlite3_bind_int(stamp, 4, sender);
    sqlite3_bind_int(stamp, 5, note ? 1 : 0);
    if (agent_id != 0)
        sqlite3_bind_int64(stamp, 6, agent_id);
    else
        sqlite3_bind_null(stamp, 6);
    fill_step(db, stamp);
}
