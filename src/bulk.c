/* bulk.c: many calls of one operation at once, on the transport's
 * connections: client:create_customers(list, {concurrency = N,
 * max_retries =, deadline =}) -> results, failures.
 *
 * results[i] is the result for list[i] or an error value: one result per
 * input, in input order, nothing skipped. Inputs that fail validation get
 * their `invalid` error and are never sent. The rest go out N at a time,
 * each on its own kept-alive connection, each with the retry policy of its
 * operation's class and its own deadline from its first attempt. */
#include "bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bridge.h"
#include "compat.h"
#include "error.h"
#include "hooks.h"

#define BULK_METATABLE "orbt.bulk"

typedef struct bulk_item {
    int index;              /* position in the input, from 1 */
    buffer path, target, body;
    int debit;              /* it takes money from a consumer's wallet */
    int applied_before;     /* an earlier attempt may have been applied */
    int group;              /* keyed calls: the position in items of the first with the same key */
    int conflict;           /* the first of a group: the input index of an item with the same key
                               and another payload, or 0 */
    int refused;            /* its group has a conflict: it is not sent */
    int attempts;
    double deadline_at;     /* from the first attempt */
    double started;         /* when its first attempt began */
    double not_before;      /* the next attempt waits until then */
} bulk_item;

typedef struct bulk_slot {
    transport_exchange *exchange;
    bulk_item *item;        /* NULL: free */
    http_response response;
    buffer wire;
    http_request request;
    int cut;                /* the attempt's timeout was cut by the deadline */
    double started;         /* when the attempt began */
    char sent_id[SIGN_UUID_LEN + 1];
    const char *request_id; /* the x-request-id it carries (sent_id), or NULL */
} bulk_slot;

/* Lives in a userdata whose __gc frees it: a Lua error half way (out of
 * memory) cannot leak the exchanges. */
typedef struct bulk_job {
    orbt_client *client;
    const operation *op;
    call_limits limits;
    bulk_item *items;
    int item_count;
    bulk_item **waiting;    /* to send: [waiting_head, waiting_end), in order; retries join at the end */
    int waiting_head, waiting_end, waiting_cap;
    bulk_slot *slots;
    int slot_count;
    int active;
    int failures;
    int hooked;             /* hooks run: the client is at BULK_CLIENT, the options at BULK_OPTIONS */
} bulk_job;

/* Where bulk_run finds the client and the call's options (its own hooks). */
#define BULK_CLIENT 3
#define BULK_OPTIONS 4

static void free_item(bulk_item *item)
{
    buffer_free(&item->path);
    buffer_free(&item->target);
    buffer_free(&item->body);
}

static void bulk_job_release(bulk_job *job)
{
    for (int i = 0; i < job->slot_count; i++) {
        bulk_slot *slot = &job->slots[i];
        transport_exchange_free(slot->exchange);
        buffer_free(&slot->response.body);
        buffer_free(&slot->wire);
    }
    for (int i = 0; i < job->item_count; i++)
        free_item(&job->items[i]);
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

static bulk_job *bulk_job_new(lua_State *L, orbt_client *c, const operation *op, int count)
{
    bulk_job *job = lua_newuserdata(L, sizeof *job);
    memset(job, 0, sizeof *job);
    if (luaL_newmetatable(L, BULK_METATABLE)) {
        lua_pushcfunction(L, bulk_job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    job->client = c;
    job->op = op;
    job->items = calloc((size_t)count + 1, sizeof *job->items);
    job->waiting = calloc((size_t)count + 1, sizeof(bulk_item *));
    job->waiting_cap = count + 1;
    if (job->items == NULL || job->waiting == NULL)
        luaL_error(L, "orbt: out of memory");
    return job;
}

/* Reads list[i] as one call of the operation: its path parameters are
 * fields of the item, next to the arguments. Leaves, from stack index
 * `first`, what client_read_call reads. */
static void push_call_arguments(lua_State *L, const operation *op, int item)
{
    size_t nparams = operation_param_count(op);
    if (nparams == 0 || !lua_istable(L, item)) {
        lua_pushvalue(L, item);
        return;
    }
    for (size_t i = 0; i < nparams; i++)
        lua_getfield(L, item, op->params[i].name);
    /* The arguments without the parameters, so the validator does not
     * take them for unknown fields. */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, item) != 0) {
        int is_param = 0;
        for (size_t i = 0; i < nparams && lua_type(L, -2) == LUA_TSTRING; i++)
            is_param = is_param || strcmp(lua_tostring(L, -2), op->params[i].name) == 0;
        if (is_param) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Whether two items send the same: the same path, query and body. */
static int same_payload(const bulk_item *a, const bulk_item *b)
{
    return a->target.len == b->target.len && a->body.len == b->body.len
           && memcmp(a->target.data, b->target.data, a->target.len) == 0
           && (a->body.len == 0 || memcmp(a->body.data, b->body.data, a->body.len) == 0);
}

/* A keyed item joins the group of the items with its idempotency key
 * (keys, a table at `keys`, maps each key to its group's first position);
 * a group whose payloads differ is marked. */
static void bulk_group_by_key(lua_State *L, bulk_job *job, const call_plan *plan, int keys)
{
    int pos = job->item_count - 1;
    bulk_item *item = &job->items[pos];
    const lua_text *key = job->op->key_of(&plan->input);
    item->group = pos;
    lua_pushlstring(L, key->ptr, key->len);
    lua_pushvalue(L, -1);
    lua_rawget(L, keys);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushinteger(L, pos);
        lua_rawset(L, keys);
        return;
    }
    item->group = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    bulk_item *first = &job->items[item->group];
    if (first->conflict == 0 && !same_payload(first, item))
        first->conflict = item->index;
}

/* Items whose key another item of the list sends with another payload:
 * which one was meant cannot be known, so none of them is sent, and each
 * gets an `invalid` error. Returns the number refused. */
static int bulk_refuse_conflicts(lua_State *L, bulk_job *job, int results)
{
    const operation *op = job->op;
    int kept = 0, refused = 0;
    /* The errors first, while every item is where it was: pushing them can
     * raise (out of memory), and the job's __gc then frees each item once. */
    for (int i = 0; i < job->item_count; i++) {
        bulk_item *item = &job->items[i];
        const bulk_item *first = &job->items[item->group];
        item->refused = first->conflict != 0;
        if (!item->refused)
            continue;
        validation_error v;
        snprintf(v.field, sizeof v.field, "%s", op->key_name);
        snprintf(v.message, sizeof v.message,
                 "items %d and %d of the list have the same %s with different payloads; no item with it "
                 "was sent", first->index, first->conflict, op->key_name);
        client_invalid(L, &v, op->method, item->path.data);
        lua_rawseti(L, results, item->index);
        lua_pop(L, 1);
        refused++;
    }
    /* Then, with no Lua call that could raise, the refused go and the rest
     * move up. */
    for (int i = 0; i < job->item_count; i++) {
        bulk_item *item = &job->items[i];
        if (item->refused)
            free_item(item);
        else
            job->items[kept++] = *item; /* kept <= i: no item still to be read is overwritten */
    }
    job->item_count = kept;
    return refused;
}

/* Validates every input: a valid one gets its request written, an invalid
 * one its error in results, and so does each of the keyed items that share
 * a key with different payloads. Returns the number refused. */
static int bulk_validate(lua_State *L, bulk_job *job, int list, int results, int count)
{
    int refused = 0;
    int keyed = job->op->key_of != NULL;
    lua_newtable(L);
    int keys = lua_gettop(L);
    for (int i = 1; i <= count; i++) {
        int top = lua_gettop(L);
        lua_rawgeti(L, list, i);
        push_call_arguments(L, job->op, top + 1);
        lua_pushnil(L); /* no call options: the job's limits apply */
        call_plan plan;
        if (client_read_call(L, job->client, job->op, top + 2, &plan) != 0) {
            lua_rawseti(L, results, i);
            lua_settop(L, top);
            refused++;
            continue;
        }
        /* Reading can run Lua code (__index) that closes the client: its
         * buffers and URL are gone, and the batch is refused after the loop. */
        if (job->client->closed) {
            lua_settop(L, top);
            continue;
        }
        bulk_item *item = &job->items[job->item_count++];
        item->index = i;
        buffer_init(&item->path, 0);
        buffer_init(&item->target, 0);
        buffer_init(&item->body, 0);
        item->debit = plan.debit;
        if (client_write_call(job->client, &plan, &item->path, &item->target, &item->body) != 0)
            luaL_error(L, "orbt: out of memory");
        if (keyed)
            bulk_group_by_key(L, job, &plan, keys);
        lua_settop(L, top);
    }
    lua_settop(L, keys - 1);
    return keyed ? refused + bulk_refuse_conflicts(L, job, results) : refused;
}

static int bulk_open_slots(bulk_job *job, int concurrency, size_t max_body)
{
    job->slot_count = job->item_count < concurrency ? job->item_count : concurrency;
    job->slots = calloc((size_t)job->slot_count, sizeof *job->slots);
    if (job->slots == NULL) {
        job->slot_count = 0;
        return -1;
    }
    for (int i = 0; i < job->slot_count; i++) {
        job->slots[i].exchange = transport_exchange_new(job->client->transport);
        buffer_init(&job->slots[i].response.body, max_body);
        buffer_init(&job->slots[i].wire, 0);
        if (job->slots[i].exchange == NULL)
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

/* The hooks' view of the slot's attempt. */
static hook_attempt slot_attempt(lua_State *L, const bulk_job *job, const bulk_slot *slot)
{
    hook_attempt h = {BULK_CLIENT, lua_istable(L, BULK_OPTIONS) ? BULK_OPTIONS : 0, job->op,
                      slot->item->path.data, slot->item->attempts, slot->request_id};
    return h;
}

static void bulk_start(lua_State *L, bulk_job *job, bulk_slot *slot, bulk_item *item, double now)
{
    orbt_client *c = job->client;
    if (item->attempts == 0) {
        item->deadline_at = now + job->limits.deadline;
        item->started = now;
    }
    slot->request_id = client_request_id(c, slot->sent_id);
    slot->item = item;
    item->attempts++;
    if (job->hooked) {
        hook_attempt h = slot_attempt(L, job, slot);
        hooks_before(L, c, &h);
        now = retry_clock();
    }
    slot->started = now;
    if (client_prepare_attempt(c, job->op, item->target.data, &item->body, slot->request_id, &slot->wire,
                               item->deadline_at - now, &slot->request, &slot->cut) != 0)
        luaL_error(L, "orbt: could not sign the request (OpenSSL failure)");
    job->active++;
    transport_start(slot->exchange, &slot->request, &slot->response);
}

/* An attempt ended: wait and retry, or decode it into results[index]. */
static void bulk_finish(lua_State *L, bulk_job *job, bulk_slot *slot, int results)
{
    orbt_client *c = job->client;
    bulk_item *item = slot->item;
    http_response *rs = &slot->response;
    if (item == NULL)
        return;
    call_info call = {job->op,        item->path.data, c->secret,   c->secret_len,
                      item->attempts, -1,              item->debit, item->applied_before};
    client_note_request_id(rs, slot->request_id);
    int coded = client_error_coded(L, c, &call, rs);
    double now = retry_clock();
    retry_verdict verdict = retry_decide(&c->random, job->op->retry, rs, coded, item->attempts,
                                         job->limits.max_retries, item->deadline_at - now);
    hook_attempt h = slot_attempt(L, job, slot);
    hook_outcome o = {rs, now - slot->started, rs->body.len, &verdict, -1};
    slot->item = NULL;
    job->active--;
    if (verdict.again) {
        item->applied_before = item->applied_before || answer_attempt_applied(rs);
        item->not_before = now + verdict.delay;
        bulk_wait_again(job, item);
        if (job->hooked)
            hooks_after(L, c, &h, &o);
        return;
    }
    client_note_deadline(rs, slot->cut, job->limits.deadline, item->attempts);
    call.retry_after = verdict.retry_after;
    /* Decoding leaves more than the result on the stack (the document, an
     * error's strings): all of it goes, or thousands of items would
     * overflow the stack. */
    int top = lua_gettop(L);
    int failed = answer_push(L, &call, rs) == 2;
    if (failed) {
        lua_remove(L, -2);
        job->failures++;
    }
    client_note_last(c, job->op, rs, item->attempts, retry_clock() - item->started);
    if (job->hooked) {
        o.error = failed ? lua_gettop(L) : 0;
        hooks_after(L, c, &h, &o);
    }
    lua_rawseti(L, results, item->index);
    lua_settop(L, top);
    buffer_release(&rs->body);
}

static bulk_slot *bulk_slot_of(bulk_job *job, const transport_exchange *x)
{
    for (int i = 0; i < job->slot_count; i++)
        if (job->slots[i].exchange == x)
            return &job->slots[i];
    return NULL;
}

/* How long to wait for an exchange to end: at most 50 ms, and no longer
 * than until the next retry is due. */
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

/* The exchanges, under lua_pcall: the job (1), the results table (2), the
 * client (BULK_CLIENT) and the options (BULK_OPTIONS). */
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
            bulk_start(L, job, &job->slots[i], item, now);
        }
        if (job->active == 0) {
            retry_sleep(bulk_wait_ms(job, retry_clock()) / 1000.0);
            continue;
        }
        transport_exchange *done = transport_next(job->client->transport, bulk_wait_ms(job, now));
        bulk_slot *slot = done != NULL ? bulk_slot_of(job, done) : NULL;
        if (slot != NULL)
            bulk_finish(L, job, slot, results);
    }
    return 0;
}

/* The checks every bulk call starts with: its options (into *concurrency
 * and *limits), its list, the client. Returns 0, or pushes nil, err and
 * returns 2. The client at 1, the list at 2, the options at 3. */
static int bulk_check(lua_State *L, orbt_client *c, const operation *op, int *concurrency, call_limits *limits)
{
    validation_error v;
    *limits = c->limits;
    if (!validate_bulk_options(L, 3, concurrency, limits, &v))
        return client_invalid(L, &v, op->method, op->path);
    if (!lua_istable(L, 2)) {
        snprintf(v.field, sizeof v.field, "%s", op->bulk_list ? op->bulk_list : "list");
        snprintf(v.message, sizeof v.message, "%s takes a list (a table) of %s",
                 op->bulk ? op->bulk : "a bulk call", op->bulk_list ? op->bulk_list : "arguments");
        return client_invalid(L, &v, op->method, op->path);
    }
    return client_refuse_if_unusable(L, c, op->method, op->path);
}

/* Validates the list into a new job: leaves the results table (refusals
 * filled in) at 4 and the job's anchor at 5, and sets *refused. Returns
 * the job, or NULL after pushing nil, err (validation closed the client). */
static bulk_job *bulk_plan_job(lua_State *L, orbt_client *c, const operation *op, const call_limits *limits,
                               int *refused)
{
    lua_settop(L, 3);
    int count = (int)lua_rawlen(L, 2);
    lua_createtable(L, count, 0);
    bulk_job *job = bulk_job_new(L, c, op, count);
    job->limits = *limits;
    *refused = bulk_validate(L, job, 2, 4, count);
    /* Validation can run Lua code (__index): the client may be gone. */
    if (client_refuse_if_unusable(L, c, op->method, op->path)) {
        bulk_job_release(job);
        return NULL;
    }
    return job;
}

/* The bulk call of op: the client at 1, the list at 2, the options at 3. */
static int run_bulk(lua_State *L, const operation *op)
{
    orbt_client *c = client_check(L, 1);
    int concurrency = 0, refused = 0;
    call_limits limits;
    if (bulk_check(L, c, op, &concurrency, &limits))
        return 2;
    const int results = 4;
    bulk_job *job = bulk_plan_job(L, c, op, &limits, &refused);
    if (job == NULL)
        return 2;
    int status = 0;
    if (job->item_count > 0) {
        if (bulk_open_slots(job, concurrency, c->response.body.limit) != 0) {
            bulk_job_release(job); /* now: the client, and its transport, may go first */
            return luaL_error(L, "orbt: out of memory");
        }
        c->busy = 1;
        job->hooked = hooks_wanted(L, c, lua_istable(L, 3) ? 3 : 0);
        lua_pushcfunction(L, bulk_run);
        lua_pushlightuserdata(L, job);
        lua_pushvalue(L, results);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 3);
        status = lua_pcall(L, 4, 0, 0);
        c->busy = 0;
        refused += job->failures;
    }
    bulk_job_release(job);
    client_release_if_pending(c);
    if (status != 0)
        return lua_error(L);
    lua_pushvalue(L, results);
    orbt_push_int64(L, refused);
    return 2;
}

int bulk_call(lua_State *L)
{
    return run_bulk(L, lua_touserdata(L, lua_upvalueindex(1)));
}

int bulk_plan(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    const operation *op = client_check_operation(L, 2);
    lua_remove(L, 2);
    int concurrency = 0, refused = 0;
    call_limits limits;
    if (bulk_check(L, c, op, &concurrency, &limits))
        return 2;
    bulk_job *job = bulk_plan_job(L, c, op, &limits, &refused);
    if (job == NULL)
        return 2;
    /* Each item to send, written once; the Lua transport signs each attempt. */
    lua_createtable(L, (int)lua_rawlen(L, 2), 0);
    for (int i = 0; i < job->item_count; i++) {
        const bulk_item *item = &job->items[i];
        bridge_push_call(L, c, op, &limits, item->path.data, &item->target, &item->body, item->debit);
        if (lua_istable(L, 3))
            hooks_copy(L, 3, -1);
        lua_rawseti(L, -2, item->index);
    }
    bulk_job_release(job); /* nothing is sent from here */
    lua_pushinteger(L, concurrency);
    lua_pushvalue(L, -2);
    orbt_push_int64(L, refused);
    lua_pushvalue(L, 4);
    lua_remove(L, -5);
    return 4;
}

int bulk_any(lua_State *L)
{
    client_check(L, 1);
    const operation *op = client_check_operation(L, 2);
    lua_remove(L, 2);
    return run_bulk(L, op);
}
