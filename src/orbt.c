/* orbt.c: the Lua module. luaopen_orbt, the client type and the call
 * pipeline: Lua arguments -> validate -> body -> sign -> transport -> answer.
 * This is the only file that knows every other part. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/crypto.h>

#include "answer.h"
#include "buffer.h"
#include "compat.h"
#include "error.h"
#include "json.h"
#include "retry.h"
#include "sign.h"
#include "transport.h"
#include "validate.h"

#define ORBT_VERSION "0.1.0"
#define CLIENT_METATABLE "orbt.client"
#define CUSTOMER_PATH "/api/partner/v1/customer"
#define HEADER_MAX 256

/* ===== The client ===== */

typedef struct orbt_client {
    char *api_key;
    char *client_id;
    char *base_url;            /* without a trailing slash */
    char *secret;              /* kept only to scrub it from server text; wiped on close */
    size_t secret_len;
    sign_key *key;
    transport *transport;
    double timeout, connect_timeout;
    buffer url;                /* reused between calls */
    buffer request_body;       /* reused between calls */
    http_response response;    /* reused between calls; its body is bounded by max_body */
    transport_choice transport_choice;
    char *ca_file;             /* a CA file replacing the system's trust (libcurl only), or NULL */
    call_limits limits;        /* max_retries and deadline, unless a call gives its own */
    retry_random random;       /* the backoff's jitter */
    int closed;
    int busy;                  /* decoding an answer: user code may run (finalizers) */
    int in_flight;             /* requests prepared for a Lua transport, not yet answered */
    int close_pending;         /* close() was called while busy or in flight */
} orbt_client;

static char *copy_text(const lua_text *t)
{
    char *s = malloc(t->len + 1);
    if (s != NULL) {
        memcpy(s, t->ptr, t->len);
        s[t->len] = '\0';
    }
    return s;
}

/* Frees everything the client holds and wipes the secret. Safe to call twice
 * and on a partly built client. */
static void client_release(orbt_client *c)
{
    if (c->secret != NULL) {
        sign_wipe(c->secret, c->secret_len);
        free(c->secret);
    }
    sign_key_free(c->key);
    transport_free(c->transport);
    free(c->api_key);
    free(c->client_id);
    free(c->base_url);
    free(c->ca_file);
    c->ca_file = NULL;
    buffer_free(&c->url);
    buffer_free(&c->request_body);
    buffer_free(&c->response.body);
    c->secret = c->api_key = c->client_id = c->base_url = NULL;
    c->key = NULL;
    c->transport = NULL;
    c->secret_len = 0;
    c->closed = 1;
    c->close_pending = 0;
}

static int client_fill(orbt_client *c, const client_options *o)
{
    c->api_key = copy_text(&o->api_key);
    c->client_id = copy_text(&o->client_id);
    c->base_url = copy_text(&o->base_url);
    c->secret = copy_text(&o->secret);
    c->secret_len = o->secret.len;
    c->key = sign_key_new(o->secret.ptr, o->secret.len);
    c->ca_file = o->ca_file.ptr != NULL ? copy_text(&o->ca_file) : NULL;
    c->transport = transport_new(o->ca_file.ptr);
    c->timeout = o->timeout;
    c->connect_timeout = o->connect_timeout;
    c->transport_choice = o->transport;
    c->limits = (call_limits){o->max_retries, o->deadline};
    retry_random_seed(&c->random);
    buffer_init(&c->url, 0);
    buffer_init(&c->request_body, 0);
    buffer_init(&c->response.body, o->max_body);
    if (c->base_url != NULL) {
        size_t n = strlen(c->base_url);
        while (n > 0 && c->base_url[n - 1] == '/')
            c->base_url[--n] = '\0';
    }
    return c->api_key && c->client_id && c->base_url && c->secret && c->key && c->transport
                   && (c->ca_file != NULL || o->ca_file.ptr == NULL)
               ? 0
               : -1;
}

/* Misuse (a method called on something that is not a client) raises. */
static orbt_client *check_client(lua_State *L)
{
    orbt_client *c = luaL_testudata(L, 1, CLIENT_METATABLE);
    if (c == NULL)
        luaL_error(L, "orbt: expected a client as self; call methods as client:method(...)");
    return c;
}

static int invalid(lua_State *L, const validation_error *v, const char *method, const char *path)
{
    orbt_error e = {0};
    e.kind = "invalid";
    e.field = v->field;
    e.message = v->message;
    e.method = method;
    e.path = path;
    return error_return(L, &e);
}

/* Called after validation: a table's __index function may have closed the
 * client meanwhile. A call from inside one of the client's own calls (a
 * finalizer running while an answer is decoded) is refused, because the
 * answer being decoded lives in the client's buffers. */
static int refuse_if_unusable(lua_State *L, const orbt_client *c, const char *method, const char *path)
{
    validation_error closed = {"client", "the client is closed"};
    validation_error busy = {"client", "the client is in use: it was called from inside one of its own calls"};
    if (c->closed)
        return invalid(L, &closed, method, path);
    if (c->busy)
        return invalid(L, &busy, method, path);
    return 0;
}

/* ===== One call ===== */

typedef struct header_lines {
    char lines[8][HEADER_MAX];
    const char *ptrs[8];
    size_t count;
} header_lines;

static void add_header(header_lines *h, const char *name, const char *value)
{
    snprintf(h->lines[h->count], HEADER_MAX, "%s: %s", name, value);
    h->ptrs[h->count] = h->lines[h->count];
    h->count++;
}

/* Signs with a fresh timestamp and builds every header of the request. */
static int build_headers(orbt_client *c, const char *method, const buffer *body, header_lines *h)
{
    char timestamp[SIGN_TIMESTAMP_LEN + 1];
    char body_hash[SIGN_B64_LEN + 1];
    char signature[SIGN_B64_LEN + 1];
    if (sign_timestamp_now(timestamp) != 0
        || sign_body_hash(body->data, body->len, body_hash) != 0
        || sign_signature(c->key, method, timestamp, c->client_id, body_hash, signature) != 0)
        return -1;
    h->count = 0;
    add_header(h, "x-api-key", c->api_key);
    add_header(h, "x-client-id", c->client_id);
    add_header(h, "x-timestamp", timestamp);
    add_header(h, "x-body-hash", body_hash);
    add_header(h, "x-signature", signature);
    add_header(h, "Accept", "application/json");
    if (body->len > 0)
        add_header(h, "Content-Type", "application/json");
    return 0;
}

typedef struct answer_job {
    answer_shape shape;
    const call_info *call;
    const http_response *response;
} answer_job;

static int answer_protected(lua_State *L)
{
    const answer_job *job = lua_touserdata(L, 1);
    lua_pop(L, 1);
    return answer_push(L, job->shape, job->call, job->response);
}

/* A close() deferred while the client was busy or had requests in flight
 * happens once neither holds. */
static void release_if_pending(orbt_client *c)
{
    if (c->close_pending && !c->busy && c->in_flight == 0)
        client_release(c);
}

/* Runs fn(job) with the client marked busy. Building Lua values can run
 * finalizers, and they can call the client: while busy, close() is deferred
 * to here and other calls are refused. fn runs under lua_pcall so that an
 * error cannot leave the client busy for ever; it is raised again once the
 * client is consistent. Returns fn's results. */
static int run_busy(lua_State *L, orbt_client *c, lua_CFunction fn, void *job)
{
    int base = lua_gettop(L);
    c->busy = 1;
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, job);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    c->busy = 0;
    buffer_release(&c->response.body);
    buffer_release(&c->request_body);
    release_if_pending(c);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - base;
}

/* Decodes the answer in rs into the call's results. */
static int finish_call(lua_State *L, orbt_client *c, answer_shape shape, const call_info *call,
                       const http_response *rs)
{
    answer_job job = {shape, call, rs};
    return run_busy(L, c, answer_protected, &job);
}

/* What one call sends: the method, path and query, and how to read the answer. */
typedef struct call_plan {
    const char *method;
    const char *path;
    char query[64];
    answer_shape shape;
    call_limits limits;
} call_plan;

static int build_url(orbt_client *c, const call_plan *p)
{
    buffer_reset(&c->url);
    return buffer_append_str(&c->url, c->base_url) || buffer_append_str(&c->url, p->path)
           || (p->query[0] && (buffer_append_str(&c->url, "?") || buffer_append_str(&c->url, p->query)));
}

/* The timeout of one attempt: the client's, cut to what the deadline leaves. */
static double attempt_timeout(double timeout, double left, int *cut)
{
    *cut = left < timeout;
    return *cut ? (left > 0.001 ? left : 0.001) : timeout;
}

/* One attempt's request, signed afresh; *cut says whether the deadline
 * (`left` seconds away) shortened its timeout. Returns -1 when OpenSSL fails. */
static int prepare_attempt(orbt_client *c, const char *method, const buffer *body, double left,
                           header_lines *headers, http_request *rq, int *cut)
{
    int connect_cut = 0;
    if (build_headers(c, method, body, headers) != 0)
        return -1;
    *rq = (http_request){
        .method = method,
        .url = c->url.data,
        .headers = headers->ptrs,
        .header_count = headers->count,
        .body = body->len > 0 ? body->data : NULL,
        .body_len = body->len,
        .timeout = attempt_timeout(c->timeout, left, cut),
        .connect_timeout = attempt_timeout(c->connect_timeout, left, &connect_cut),
    };
    return 0;
}

/* A timeout the deadline caused says so. */
static void note_deadline(http_response *rs, int cut, double deadline, int attempts)
{
    if (cut && rs->result == TRANSPORT_TIMEOUT)
        snprintf(rs->message, sizeof rs->message, "the call's deadline of %g s passed (attempt %d)",
                 deadline, attempts);
}

/* The libcurl transport, with the retry policy of retry.h: each attempt is
 * signed afresh. Everything from the usability check to finish_call stays in
 * C memory: a Lua allocation here could run a finalizer that closes the
 * client. */
static int perform_call(lua_State *L, orbt_client *c, const call_plan *p)
{
    if (build_url(c, p) != 0)
        return luaL_error(L, "orbt: out of memory");
    double deadline_at = retry_clock() + p->limits.deadline;
    retry_verdict verdict;
    int attempts = 0, cut = 0;
    do {
        if (attempts > 0)
            retry_sleep(verdict.delay);
        header_lines headers;
        http_request rq;
        if (prepare_attempt(c, p->method, &c->request_body, deadline_at - retry_clock(), &headers, &rq, &cut) != 0)
            return luaL_error(L, "orbt: could not sign the request (OpenSSL failure)");
        transport_perform(c->transport, &rq, &c->response);
        attempts++;
        verdict = retry_decide(&c->random, p->method, &c->response, attempts, p->limits.max_retries,
                               deadline_at - retry_clock());
    } while (verdict.again);
    note_deadline(&c->response, cut, p->limits.deadline, attempts);
    call_info call = {p->method, p->path, c->secret, c->secret_len, attempts, verdict.retry_after};
    return finish_call(L, c, p->shape, &call, &c->response);
}

/* ===== Methods ===== */

static int build_customer_body(buffer *b, const customer_input *in)
{
    buffer_reset(b);
    return buffer_append_str(b, "{\"fullName\":") || json_append_string(b, in->full_name.ptr, in->full_name.len)
           || buffer_append_str(b, ",\"email\":") || json_append_string(b, in->email.ptr, in->email.len)
           || buffer_append_str(b, ",\"currency\":") || json_append_string(b, in->currency.ptr, in->currency.len)
           || buffer_append_str(b, ",\"initialFunds\":") || buffer_append_str(b, in->initial_funds)
           || buffer_append_str(b, "}");
}

/* Each plan_* validates a method's arguments (at stack index 2) and fills in
 * the plan and the request body. Returns 0, or pushes `nil, err` and returns 2. */
static int plan_create(lua_State *L, orbt_client *c, call_plan *p)
{
    customer_input in;
    validation_error v;
    *p = (call_plan){"POST", CUSTOMER_PATH, "", ANSWER_CUSTOMER, c->limits};
    if (!validate_call_limits(L, 3, &p->limits, &v) || !validate_customer(L, 2, &in, &v))
        return invalid(L, &v, p->method, p->path);
    if (refuse_if_unusable(L, c, p->method, p->path))
        return 2;
    if (build_customer_body(&c->request_body, &in) != 0)
        return luaL_error(L, "orbt: out of memory");
    return 0;
}

static int plan_list(lua_State *L, orbt_client *c, call_plan *p)
{
    page_query q;
    validation_error v;
    *p = (call_plan){"GET", CUSTOMER_PATH, "", ANSWER_PAGE, c->limits};
    if (!validate_call_limits(L, 3, &p->limits, &v) || !validate_page_query(L, 2, &q, &v))
        return invalid(L, &v, p->method, p->path);
    if (refuse_if_unusable(L, c, p->method, p->path))
        return 2;
    int n = 0;
    if (q.has_page)
        n = snprintf(p->query, sizeof p->query, "page=%lld", (long long)q.page);
    if (q.has_size)
        snprintf(p->query + n, sizeof p->query - (size_t)n, "%ssize=%lld", n ? "&" : "", (long long)q.size);
    buffer_reset(&c->request_body);
    return 0;
}

static int client_create_customer(lua_State *L)
{
    orbt_client *c = check_client(L);
    call_plan p;
    int refused = plan_create(L, c, &p);
    return refused ? refused : perform_call(L, c, &p);
}

static int client_list_customers(lua_State *L)
{
    orbt_client *c = check_client(L);
    call_plan p;
    int refused = plan_list(L, c, &p);
    return refused ? refused : perform_call(L, c, &p);
}

/* ===== Bulk creation: create_customers over libcurl's multi interface =====
 *
 * client:create_customers(list, {concurrency = N, max_retries =, deadline =})
 * -> results, failures. results[i] is the customer created for list[i] or an
 * error value: one result per input, in input order, nothing skipped.
 * Inputs that fail validation get their `invalid` error and are never sent.
 * The rest go out N at a time, on kept-alive connections, each with the
 * retry policy of retry.h (a create is retried only when it never reached
 * the server, or on 429) and its own deadline from its first attempt. */

#define BULK_METATABLE "orbt.bulk"

typedef struct bulk_item {
    int index;              /* position in the input, from 1 */
    buffer body;
    int attempts;
    double deadline_at;     /* from the first attempt */
    double not_before;      /* the next attempt waits until then */
} bulk_item;

typedef struct bulk_slot {
    transport *transport;
    bulk_item *item;        /* NULL: free */
    http_response response;
    header_lines headers;
    http_request request;
    int cut;                /* the attempt's timeout was cut by the deadline */
} bulk_slot;

/* Lives in a userdata whose __gc frees it: a Lua error half way (out of
 * memory) cannot leak the transfers. */
typedef struct bulk_job {
    orbt_client *client;
    call_limits limits;
    bulk_item *items;
    int item_count;
    bulk_item **waiting;    /* to send: [waiting_head, waiting_end), in order; retries join at the end */
    int waiting_head, waiting_end, waiting_cap;
    bulk_slot *slots;
    int slot_count;
    int active;
    transport_batch *batch;
    int failures;
} bulk_job;

static void bulk_job_release(bulk_job *job)
{
    for (int i = 0; i < job->slot_count; i++) {
        bulk_slot *slot = &job->slots[i];
        if (slot->transport != NULL && job->batch != NULL)
            transport_batch_remove(job->batch, slot->transport);
        transport_free(slot->transport);
        buffer_free(&slot->response.body);
    }
    transport_batch_free(job->batch);
    for (int i = 0; i < job->item_count; i++)
        buffer_free(&job->items[i].body);
    free(job->slots);
    free(job->waiting);
    free(job->items);
    memset(job, 0, sizeof *job);
}

static int bulk_job_gc(lua_State *L)
{
    bulk_job_release(luaL_checkudata(L, 1, BULK_METATABLE));
    return 0;
}

static bulk_job *bulk_job_new(lua_State *L, orbt_client *c, int count)
{
    bulk_job *job = lua_newuserdata(L, sizeof *job);
    memset(job, 0, sizeof *job);
    if (luaL_newmetatable(L, BULK_METATABLE)) {
        lua_pushcfunction(L, bulk_job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    job->client = c;
    job->items = calloc((size_t)count + 1, sizeof *job->items);
    job->waiting = calloc((size_t)count + 1, sizeof(bulk_item *));
    job->waiting_cap = count + 1;
    if (job->items == NULL || job->waiting == NULL)
        luaL_error(L, "orbt: out of memory");
    return job;
}

/* Validates every input: a valid one gets its body, an invalid one its
 * error in results. Returns the number refused. */
static int bulk_validate(lua_State *L, bulk_job *job, int list, int results, int count)
{
    int refused = 0;
    for (int i = 1; i <= count; i++) {
        int top = lua_gettop(L);
        lua_rawgeti(L, list, i);
        customer_input in;
        validation_error v;
        if (!validate_customer(L, top + 1, &in, &v)) {
            lua_settop(L, top);
            invalid(L, &v, "POST", CUSTOMER_PATH);
            lua_rawseti(L, results, i);
            lua_pop(L, 1); /* the nil before the error */
            refused++;
            continue;
        }
        bulk_item *item = &job->items[job->item_count++];
        item->index = i;
        buffer_init(&item->body, 0);
        if (build_customer_body(&item->body, &in) != 0)
            luaL_error(L, "orbt: out of memory");
        lua_settop(L, top);
    }
    return refused;
}

static int bulk_open_slots(bulk_job *job, int concurrency, size_t max_body)
{
    job->slot_count = job->item_count < concurrency ? job->item_count : concurrency;
    job->slots = calloc((size_t)job->slot_count, sizeof *job->slots);
    job->batch = transport_batch_new(job->slot_count);
    if (job->slots == NULL || job->batch == NULL)
        return -1;
    for (int i = 0; i < job->slot_count; i++) {
        job->slots[i].transport = transport_new(job->client->ca_file);
        buffer_init(&job->slots[i].response.body, max_body);
        if (job->slots[i].transport == NULL)
            return -1;
    }
    for (int i = 0; i < job->item_count; i++)
        job->waiting[job->waiting_end++] = &job->items[i];
    return 0;
}

/* The first waiting item whose time has come, taken off the list. Items
 * are mostly taken from the front: that costs one step, not a move of the
 * whole list. */
static bulk_item *bulk_take_ready(bulk_job *job, double now)
{
    for (int i = job->waiting_head; i < job->waiting_end; i++) {
        bulk_item *item = job->waiting[i];
        if (item->not_before <= now) {
            /* The items before it (still waiting) move up one place. */
            memmove(&job->waiting[job->waiting_head + 1], &job->waiting[job->waiting_head],
                    (size_t)(i - job->waiting_head) * sizeof(bulk_item *));
            job->waiting_head++;
            return item;
        }
    }
    return NULL;
}

/* Puts an item back at the end of the list, to be tried again. An item is
 * on the list at most once, so after moving the list to the front there is
 * always room. */
static void bulk_wait_again(bulk_job *job, bulk_item *item)
{
    if (job->waiting_end == job->waiting_cap) {
        int n = job->waiting_end - job->waiting_head;
        memmove(job->waiting, &job->waiting[job->waiting_head], (size_t)n * sizeof(bulk_item *));
        job->waiting_head = 0;
        job->waiting_end = n;
    }
    job->waiting[job->waiting_end++] = item;
}

static void bulk_finish(lua_State *L, bulk_job *job, bulk_slot *slot, int results);

static void bulk_start(lua_State *L, bulk_job *job, bulk_slot *slot, bulk_item *item, double now, int results)
{
    orbt_client *c = job->client;
    if (item->attempts == 0)
        item->deadline_at = now + job->limits.deadline;
    if (prepare_attempt(c, "POST", &item->body, item->deadline_at - now, &slot->headers, &slot->request,
                        &slot->cut) != 0)
        luaL_error(L, "orbt: could not sign the request (OpenSSL failure)");
    slot->item = item;
    item->attempts++;
    job->active++;
    if (transport_batch_add(job->batch, slot->transport, &slot->request, &slot->response) != 0)
        bulk_finish(L, job, slot, results); /* the response says why */
}

/* An attempt ended: wait and retry, or decode it into results[index]. */
static void bulk_finish(lua_State *L, bulk_job *job, bulk_slot *slot, int results)
{
    orbt_client *c = job->client;
    bulk_item *item = slot->item;
    http_response *rs = &slot->response;
    if (item == NULL)
        return;
    double now = retry_clock();
    retry_verdict verdict = retry_decide(&c->random, "POST", rs, item->attempts, job->limits.max_retries,
                                         item->deadline_at - now);
    slot->item = NULL;
    job->active--;
    if (verdict.again) {
        item->not_before = now + verdict.delay;
        bulk_wait_again(job, item);
        return;
    }
    note_deadline(rs, slot->cut, job->limits.deadline, item->attempts);
    call_info call = {"POST", CUSTOMER_PATH, c->secret, c->secret_len, item->attempts, verdict.retry_after};
    if (answer_push(L, ANSWER_CUSTOMER, &call, rs) == 2) {
        lua_remove(L, -2);
        job->failures++;
    }
    lua_rawseti(L, results, item->index);
    buffer_release(&rs->body);
}

static bulk_slot *bulk_slot_of(bulk_job *job, const transport *t)
{
    for (int i = 0; i < job->slot_count; i++)
        if (job->slots[i].transport == t)
            return &job->slots[i];
    return NULL;
}

/* How long to wait for a transfer to end: at most 50 ms, and no longer than
 * until the next retry is due. */
static int bulk_wait_ms(const bulk_job *job, double now)
{
    double wait = 0.05;
    for (int i = job->waiting_head; i < job->waiting_end; i++) {
        double until = job->waiting[i]->not_before - now;
        if (until > 0 && until < wait)
            wait = until;
    }
    return (int)(wait * 1000) + 1;
}

/* The transfers, under lua_pcall: the job (1) and the results table (2). */
static int bulk_run(lua_State *L)
{
    bulk_job *job = lua_touserdata(L, 1);
    const int results = 2;
    while (job->waiting_end > job->waiting_head || job->active > 0) {
        double now = retry_clock();
        for (int i = 0; i < job->slot_count; i++) {
            if (job->slots[i].item != NULL)
                continue;
            bulk_item *item = bulk_take_ready(job, now);
            if (item == NULL)
                break;
            bulk_start(L, job, &job->slots[i], item, now, results);
        }
        if (job->active == 0) {
            retry_sleep(bulk_wait_ms(job, retry_clock()) / 1000.0);
            continue;
        }
        transport *done = transport_batch_next(job->batch, bulk_wait_ms(job, now));
        bulk_slot *slot = done != NULL ? bulk_slot_of(job, done) : NULL;
        if (slot != NULL)
            bulk_finish(L, job, slot, results);
    }
    return 0;
}

static int client_create_customers(lua_State *L)
{
    orbt_client *c = check_client(L);
    validation_error v;
    int concurrency = 0;
    call_limits limits = c->limits;
    if (!validate_bulk_options(L, 3, &concurrency, &limits, &v))
        return invalid(L, &v, "POST", CUSTOMER_PATH);
    if (!lua_istable(L, 2)) {
        validation_error not_list = {"customers", "create_customers takes a list (a table) of customers"};
        return invalid(L, &not_list, "POST", CUSTOMER_PATH);
    }
    lua_settop(L, 3);
    int count = (int)lua_rawlen(L, 2);
    lua_createtable(L, count, 0);
    const int results = 4;
    bulk_job *job = bulk_job_new(L, c, count); /* stays at 5: the job's anchor */
    job->limits = limits;
    int refused = bulk_validate(L, job, 2, results, count);
    /* Validation can run Lua code (__index): the client may be gone. */
    if (refuse_if_unusable(L, c, "POST", CUSTOMER_PATH)) {
        bulk_job_release(job);
        return 2;
    }
    int status = 0;
    if (job->item_count > 0) {
        if (build_url(c, &(call_plan){"POST", CUSTOMER_PATH, "", ANSWER_CUSTOMER, limits}) != 0
            || bulk_open_slots(job, concurrency, c->response.body.limit) != 0)
            return luaL_error(L, "orbt: out of memory");
        c->busy = 1;
        lua_pushcfunction(L, bulk_run);
        lua_pushlightuserdata(L, job);
        lua_pushvalue(L, results);
        status = lua_pcall(L, 2, 0, 0);
        c->busy = 0;
        refused += job->failures;
    }
    bulk_job_release(job);
    release_if_pending(c);
    if (status != 0)
        return lua_error(L);
    lua_pushvalue(L, results);
    orbt_push_int64(L, refused);
    return 2;
}

/* ===== The interface for a transport written in Lua (lua/orbt/cosocket.lua) ===== */

static const char *const operations[] = {"create_customer", "list_customers", NULL};

static int plan_operation(lua_State *L, orbt_client *c, int op, call_plan *p)
{
    return op == 0 ? plan_create(L, c, p) : plan_list(L, c, p);
}

typedef struct prepared_job {
    const orbt_client *client;
    const call_plan *plan;
    const header_lines *headers;
} prepared_job;

static int push_prepared(lua_State *L)
{
    const prepared_job *job = lua_touserdata(L, 1);
    const orbt_client *c = job->client;
    lua_pop(L, 1);
    lua_pushstring(L, job->plan->method);
    lua_pushstring(L, job->plan->path);
    if (job->plan->query[0]) {
        lua_pushliteral(L, "?");
        lua_pushstring(L, job->plan->query);
        lua_concat(L, 3);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < job->headers->count; i++) {
        luaL_addstring(&b, job->headers->ptrs[i]);
        luaL_addstring(&b, "\r\n");
    }
    luaL_pushresult(&b);
    lua_pushlstring(L, c->request_body.len > 0 ? c->request_body.data : "", c->request_body.len);
    lua_pushnumber(L, job->plan->limits.deadline);
    orbt_push_int64(L, job->plan->limits.max_retries);
    return 6;
}

/* client:_prepare(operation, arguments, call_options) -> method, target,
 * headers, body, deadline, max_retries, or nil, err when the arguments are
 * refused. The headers are signed "Name: value\r\n" lines; the transport
 * adds Host and Content-Length. Every successful _prepare must be followed
 * by one _answer. Each attempt of a call is prepared again: a new signature. */
static int client_prepare(lua_State *L)
{
    orbt_client *c = check_client(L);
    int op = luaL_checkoption(L, 2, NULL, operations);
    lua_remove(L, 2); /* the arguments table moves to index 2, as plan_* expect */
    call_plan p;
    int refused = plan_operation(L, c, op, &p);
    if (refused)
        return refused;
    header_lines headers;
    if (build_headers(c, p.method, &c->request_body, &headers) != 0)
        return luaL_error(L, "orbt: could not sign the request (OpenSSL failure)");
    prepared_job job = {c, &p, &headers};
    c->in_flight++; /* from here a close() waits for the _answer */
    return run_busy(L, c, push_prepared, &job);
}

static transport_result transport_failure(lua_State *L, int idx)
{
    static const char *const names[] = {"network", "timeout", "too_large", NULL};
    static const transport_result results[] = {TRANSPORT_NETWORK, TRANSPORT_TIMEOUT, TRANSPORT_TOO_LARGE};
    if (lua_isnoneornil(L, idx))
        return TRANSPORT_OK;
    return results[luaL_checkoption(L, idx, NULL, names)];
}

/* client:_answer(operation, status, body, failure, message, request_sent,
 * retry_after, attempt, max_retries, seconds_left) -> the call's results,
 * and after `nil, err` the seconds to wait before the next attempt when the
 * retry policy wants one. failure is nil for a complete answer, else
 * "network", "timeout" or "too_large" with a message; status is 0 when there
 * was none; retry_after is the Retry-After header, if any. */
static int client_answer(lua_State *L)
{
    orbt_client *c = check_client(L);
    int op = luaL_checkoption(L, 2, NULL, operations);
    call_plan p = {op == 0 ? "POST" : "GET", CUSTOMER_PATH, "", op == 0 ? ANSWER_CUSTOMER : ANSWER_PAGE,
                   c->limits};
    http_response rs;
    memset(&rs, 0, sizeof rs);
    rs.status = (long)luaL_checkinteger(L, 3);
    size_t body_len = 0;
    /* The answer code only reads the body; the Lua string outlives the call. */
    rs.body.data = (char *)luaL_optlstring(L, 4, "", &body_len);
    rs.body.len = body_len;
    rs.result = transport_failure(L, 5);
    snprintf(rs.message, sizeof rs.message, "%s", luaL_optstring(L, 6, "the transport failed"));
    rs.request_sent = lua_toboolean(L, 7);
    snprintf(rs.retry_after, sizeof rs.retry_after, "%s", luaL_optstring(L, 8, ""));
    int attempt = (int)luaL_optinteger(L, 9, 1);
    int max_retries = (int)luaL_optinteger(L, 10, 0);
    double seconds_left = (double)luaL_optnumber(L, 11, 0);
    if (c->in_flight > 0)
        c->in_flight--;
    if (c->closed && !c->close_pending) {
        validation_error closed = {"client", "the client was closed while this call was in flight"};
        return invalid(L, &closed, p.method, p.path);
    }
    retry_verdict verdict = retry_decide(&c->random, p.method, &rs, attempt, max_retries, seconds_left);
    int again = verdict.again && !c->closed;
    call_info call = {p.method, p.path, c->secret, c->secret_len, attempt, verdict.retry_after};
    int n = finish_call(L, c, p.shape, &call, &rs);
    if (again && n == 2) {
        lua_pushnumber(L, verdict.delay);
        n++;
    }
    return n;
}

/* client:_settings() -> base_url, timeout, connect_timeout, max_body,
 * transport ("auto", "curl" or "cosocket"), whether a ca_file is set, or nil, err once
 * closed. A call's deadline and max_retries come from _prepare. */
static int client_settings(lua_State *L)
{
    static const char *const choices[] = {"auto", "curl", "cosocket"};
    orbt_client *c = check_client(L);
    if (refuse_if_unusable(L, c, NULL, NULL))
        return 2;
    lua_pushstring(L, c->base_url);
    lua_pushnumber(L, c->timeout);
    lua_pushnumber(L, c->connect_timeout);
    orbt_push_int64(L, (int64_t)c->response.body.limit);
    lua_pushstring(L, choices[c->transport_choice]);
    lua_pushboolean(L, c->ca_file != NULL);
    return 6;
}

static int client_close(lua_State *L)
{
    orbt_client *c = check_client(L);
    if (c->busy || c->in_flight > 0) {
        c->closed = 1;
        c->close_pending = 1; /* release_if_pending releases it */
        return 0;
    }
    client_release(c);
    return 0;
}

static int client_gc(lua_State *L)
{
    client_release(luaL_checkudata(L, 1, CLIENT_METATABLE));
    return 0;
}

/* Shows who the client is, never what it knows. */
static int client_tostring(lua_State *L)
{
    orbt_client *c = luaL_checkudata(L, 1, CLIENT_METATABLE);
    if (c->closed)
        lua_pushliteral(L, "orbt.client (closed)");
    else
        lua_pushfstring(L, "orbt.client (client_id=%s, base_url=%s)", c->client_id, c->base_url);
    return 1;
}

/* ===== Module functions ===== */

/* Cosockets exist only inside nginx, whose Lua has the global `ngx`. */
static int cosockets_possible(lua_State *L)
{
    lua_getglobal(L, "ngx");
    int in_nginx = lua_istable(L, -1);
    lua_pop(L, 1);
    return in_nginx;
}

static int orbt_new(lua_State *L)
{
    client_options o;
    validation_error v = {"transport", "transport = \"cosocket\" works only inside nginx (OpenResty); "
                                       "use \"auto\" to let orbt choose"};
    if (!validate_client_options(L, 1, &o, &v))
        return invalid(L, &v, NULL, NULL);
    if (o.transport == TRANSPORT_CHOICE_COSOCKET && !cosockets_possible(L))
        return invalid(L, &v, NULL, NULL);
    orbt_client *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c); /* __gc can release a zeroed client */
    luaL_setmetatable(L, CLIENT_METATABLE);
    if (client_fill(c, &o) != 0) {
        client_release(c);
        return luaL_error(L, "orbt: out of memory creating the client");
    }
    return 1;
}

static void set_header_field(lua_State *L, const char *name, const char *value, size_t len)
{
    lua_pushlstring(L, value, len);
    lua_setfield(L, -2, name);
}

/* orbt.sign keeps the HMAC key of the last secret it was given, so that
 * signing many requests with one secret derives the key once. It lives in an
 * upvalue of orbt.sign (one per Lua state) and is wiped when the secret
 * changes and when the state closes. */
#define SIGN_CACHE_METATABLE "orbt.sign_cache"

typedef struct sign_cache {
    char *secret;
    size_t secret_len;
    sign_key *key;
} sign_cache;

static void sign_cache_clear(sign_cache *cache)
{
    if (cache->secret != NULL) {
        sign_wipe(cache->secret, cache->secret_len);
        free(cache->secret);
    }
    sign_key_free(cache->key);
    cache->secret = NULL;
    cache->secret_len = 0;
    cache->key = NULL;
}

static int sign_cache_gc(lua_State *L)
{
    sign_cache_clear(luaL_checkudata(L, 1, SIGN_CACHE_METATABLE));
    return 0;
}

/* The key for this secret, from the cache or derived and cached. */
static sign_key *sign_cache_key(sign_cache *cache, const lua_text *secret)
{
    if (cache->key != NULL && cache->secret_len == secret->len
        && CRYPTO_memcmp(cache->secret, secret->ptr, secret->len) == 0)
        return cache->key;
    sign_cache_clear(cache);
    cache->secret = malloc(secret->len + 1);
    cache->key = sign_key_new(secret->ptr, secret->len);
    if (cache->secret == NULL || cache->key == NULL) {
        sign_cache_clear(cache);
        return NULL;
    }
    memcpy(cache->secret, secret->ptr, secret->len);
    cache->secret_len = secret->len;
    return cache->key;
}

/* orbt.sign{method=, body=, client_id=, api_key=, secret=, timestamp=} ->
 * the five authentication headers, for users with an HTTP client of their own. */
static int orbt_sign(lua_State *L)
{
    sign_cache *cache = lua_touserdata(L, lua_upvalueindex(1));
    sign_input in;
    validation_error v;
    if (!validate_sign_input(L, 1, &in, &v))
        return invalid(L, &v, NULL, NULL);
    char method[17];
    for (size_t i = 0; i <= in.method.len; i++)
        method[i] = (char)toupper((unsigned char)in.method.ptr[i]);
    char timestamp[SIGN_TIMESTAMP_LEN + 1];
    if (in.timestamp.ptr != NULL)
        memcpy(timestamp, in.timestamp.ptr, SIGN_TIMESTAMP_LEN + 1);
    else if (sign_timestamp_now(timestamp) != 0)
        return luaL_error(L, "orbt: cannot read the clock");
    char body_hash[SIGN_B64_LEN + 1];
    char signature[SIGN_B64_LEN + 1];
    sign_key *key = sign_cache_key(cache, &in.secret);
    if (key == NULL || sign_body_hash(in.body.ptr, in.body.len, body_hash) != 0
        || sign_signature(key, method, timestamp, in.client_id.ptr, body_hash, signature) != 0)
        return luaL_error(L, "orbt: could not sign (OpenSSL failure)");
    lua_createtable(L, 0, 5);
    set_header_field(L, "x-api-key", in.api_key.ptr, in.api_key.len);
    set_header_field(L, "x-client-id", in.client_id.ptr, in.client_id.len);
    set_header_field(L, "x-timestamp", timestamp, SIGN_TIMESTAMP_LEN);
    set_header_field(L, "x-body-hash", body_hash, SIGN_B64_LEN);
    set_header_field(L, "x-signature", signature, SIGN_B64_LEN);
    return 1;
}

/* orbt.is_error(v): whether v is one of orbt's error values, for telling
 * apart the results of create_customers. */
static int orbt_is_error(lua_State *L)
{
    lua_pushboolean(L, lua_istable(L, 1) && error_is(L, 1));
    return 1;
}

static void register_sign(lua_State *L)
{
    sign_cache *cache = lua_newuserdata(L, sizeof *cache);
    memset(cache, 0, sizeof *cache);
    luaL_newmetatable(L, SIGN_CACHE_METATABLE);
    lua_pushcfunction(L, sign_cache_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, orbt_sign, 1);
    lua_setfield(L, -2, "sign");
}

/* ===== Initialisation ===== */

/* Balances curl_global_init when this Lua state closes. */
static int global_gc(lua_State *L)
{
    (void)L;
    transport_global_cleanup();
    return 0;
}

static void init_transport_once(lua_State *L)
{
    static const char key[] = "orbt.transport_global";
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    int done = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (done)
        return;
    if (transport_global_init() != 0)
        luaL_error(L, "orbt: libcurl failed to initialise");
    lua_newuserdata(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, global_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

static const luaL_Reg client_methods[] = {
    {"create_customer", client_create_customer},
    {"list_customers", client_list_customers},
    {"create_customers", client_create_customers},
    {"close", client_close},
    {"_prepare", client_prepare},
    {"_answer", client_answer},
    {"_settings", client_settings},
    {NULL, NULL},
};

static const luaL_Reg client_meta[] = {
    {"__gc", client_gc},
    {"__tostring", client_tostring},
    {NULL, NULL},
};

static const luaL_Reg module_functions[] = {
    {"new", orbt_new},
    {"is_error", orbt_is_error},
    {NULL, NULL},
};

/* Gives a table of error fields the error metatable, so that errors made in
 * the Lua layer print and behave like the core's. */
static int make_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    error_set_metatable(L, 1);
    return 1;
}

/* Calls require(name).install(methods, make_error); the table of methods
 * is at the top of the stack. */
static void install_lua_module(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "install");
    lua_pushvalue(L, -3);
    lua_pushcfunction(L, make_error);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
}

/* The pure-Lua layer: the nginx transport (lua/orbt/cosocket.lua) wraps
 * the two calls when running inside nginx, and the pager
 * (lua/orbt/pager.lua) adds the iterators. */
static void install_lua_layer(lua_State *L)
{
    install_lua_module(L, "orbt.cosocket");
    install_lua_module(L, "orbt.pager");
}

/* The one exported symbol: everything else is hidden (-fvisibility=hidden),
 * so our helper names cannot clash with a host program's. */
__attribute__((visibility("default"))) int luaopen_orbt(lua_State *L);

int luaopen_orbt(lua_State *L)
{
    init_transport_once(L);
    error_register(L);

    luaL_newmetatable(L, CLIENT_METATABLE);
    luaL_setfuncs(L, client_meta, 0);
    lua_pushliteral(L, CLIENT_METATABLE);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(client) cannot reach __gc */
    luaL_newlib(L, client_methods);
    install_lua_layer(L);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newlib(L, module_functions);
    register_sign(L);
    json_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, ORBT_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "orbt");
    lua_setfield(L, -2, "_NAME");
    return 1;
}
