/* Reset generations: a request begun before a reset changes nothing after it. */
#ifndef ORBT_MOCK_GENERATION_H
#define ORBT_MOCK_GENERATION_H

#include <stdbool.h>

void generation_init(void);
/* Ends every sleep for good (SIGTERM must not sit out a delay). */
void generation_stop(void);
void generation_shutdown(void);

/* Brackets a request's state changes (count, log, fault, create). Between
 * enter and leave no reset can start, so a check-then-change is atomic.
 * generation_enter returns the current generation; generation_resume enters
 * only if gen is still current, and returns false (holding nothing) if not. */
unsigned long generation_enter(void);
bool generation_resume(unsigned long gen);
void generation_leave(void);

/* Brackets a reset: waits for state changes in progress and holds off new
 * ones; the end starts a new generation and wakes the old one's sleepers. */
void generation_reset_begin(void);
void generation_reset_end(void);

/* Sleeps ms; false as soon as the server stops or gen is no longer current. */
bool generation_sleep(unsigned long gen, long ms);

#endif
