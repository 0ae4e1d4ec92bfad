/* version.h: orbt's version, in the one place it is written. */
#ifndef ORBT_VERSION_H
#define ORBT_VERSION_H

#define ORBT_VERSION "0.1.0"
#define ORBT_USER_AGENT "orbt-lua/" ORBT_VERSION
/* Requests sent by the nginx transport say so. */
#define ORBT_USER_AGENT_COSOCKET ORBT_USER_AGENT " (nginx cosocket)"

#endif
