/* threads.c: a C host with many threads, each running Lua in a lua_State
 * of its own, the way a game server or an app backend with a worker pool
 * embeds Lua. orbt is linked in and registered in package.preload; every
 * thread opens it at the same moment (a barrier), so that its one-time set-up
 * (libcurl's global init, OpenSSL's algorithms) is raced for real, then runs
 * the same script with the global THREAD set to its number.
 *
 *   orbt-threads SCRIPT.lua [THREADS]
 *
 * A lua_State and the clients made in it belong to one thread: states are
 * never shared, and nothing in orbt is shared between them but what it sets
 * up once per process. Build: `make threads` (with ThreadSanitizer: see the
 * Makefile's tsan target). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define THREADS_MAX 64

int luaopen_orbt(lua_State *L);

typedef struct worker {
    int number;
    const char *script;
    pthread_barrier_t *start;
    int ok;
} worker;

static void register_orbt(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_orbt);
    lua_setfield(L, -2, "orbt");
    lua_pop(L, 2);
}

/* require("orbt"), right after every other thread was let go. */
static int open_orbt(lua_State *L, pthread_barrier_t *start)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "orbt");
    pthread_barrier_wait(start);
    return lua_pcall(L, 1, 0, 0);
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "orbt-threads: thread %d: cannot create a Lua state\n", w->number);
        pthread_barrier_wait(w->start);
        return NULL;
    }
    luaL_openlibs(L);
    register_orbt(L);
    lua_pushinteger(L, w->number);
    lua_setglobal(L, "THREAD");
    int status = open_orbt(L, w->start);
    if (status == 0)
        status = luaL_loadfile(L, w->script);
    if (status == 0)
        status = lua_pcall(L, 0, 0, 0);
    if (status != 0) {
        /* The error may be an orbt error value: tostring gives its text. */
        lua_getglobal(L, "tostring");
        lua_insert(L, -2);
        lua_pcall(L, 1, 1, 0);
        fprintf(stderr, "orbt-threads: thread %d: %s\n", w->number, lua_tostring(L, -1));
    }
    w->ok = status == 0;
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    int count = argc > 2 ? atoi(argv[2]) : 8;
    if (argc < 2 || argc > 3 || count < 1 || count > THREADS_MAX) {
        fprintf(stderr, "usage: %s SCRIPT.lua [THREADS, 1..%d]\n", argv[0], THREADS_MAX);
        return 2;
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)count);
    worker workers[THREADS_MAX];
    pthread_t threads[THREADS_MAX];
    int started = 0;
    for (int i = 0; i < count; i++) {
        workers[i] = (worker){i + 1, argv[1], &start, 0};
        if (pthread_create(&threads[i], NULL, run_worker, &workers[i]) != 0) {
            fprintf(stderr, "orbt-threads: cannot start thread %d\n", i + 1);
            return 1; /* the started ones wait at the barrier: exit ends them */
        }
        started++;
    }
    int failed = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        failed += !workers[i].ok;
    }
    pthread_barrier_destroy(&start);
    printf("orbt-threads: %d threads, %d failed\n", count, failed);
    return failed == 0 ? 0 : 1;
}
