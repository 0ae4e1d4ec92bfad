/* version.h: orbt's version, the one place a human writes it. The Makefile
 * reads it from here (VERSION, for make dist), the module gives it as
 * orbt._VERSION and in the User-Agent. A release also names it in
 * orbt-VERSION-1.rockspec, CHANGELOG.md and debian/changelog:
 * spec/version_spec.lua fails until they all agree with this line. */
#ifndef ORBT_VERSION_H
#define ORBT_VERSION_H

#define ORBT_VERSION "0.2.0"
#define ORBT_USER_AGENT "orbt-lua/" ORBT_VERSION
/* Requests sent by the nginx transport say so. */
#define ORBT_USER_AGENT_COSOCKET ORBT_USER_AGENT " (nginx cosocket)"

#endif
