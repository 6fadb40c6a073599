/* core.h - private interfaces between the sandbox core files (main.c, server.c, settings.c,
 * reqlog.c, faults.c, control.c). The emulated systems see only sandbox.h. */
#ifndef SB_CORE_H
#define SB_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sandbox.h"

/* ---- settings.c: own mutex, callable with or without the state lock ---- */
void sb_settings_init(void);
void sb_settings_free(void);
/* Sets name to a copy of value (number or string; JSON null removes it). False on other types. */
bool sb_settings_set(const char *name, const cJSON *value);
/* "name=value" from the command line: a value that parses as a number is stored as one. */
bool sb_settings_assign(const char *assignment);
/* All settings as a new JSON object; caller deletes. */
cJSON *sb_settings_json(void);
/* Remembers the current table as the start-up values / restores them. */
void sb_settings_mark_defaults(void);
void sb_settings_restore_defaults(void);

/* ---- reqlog.c: own mutex ---- */
/* body (may be NULL) is kept only up to the setting core.log_body_bytes (default 0: not kept);
 * fault names the injected fault that decided the answer (NULL: none). */
void sb_reqlog_add(const char *system, const char *direction, const char *method, const char *path,
                   const char *query, int status, const char *body, size_t body_len,
                   const char *fault);
/* Entries with id > since (system NULL = all) as {"requests":[…],"last_id":n}; caller deletes. */
cJSON *sb_reqlog_json(int64_t since, const char *system);
void sb_reqlog_clear(void);

/* ---- faults.c: own mutex ---- */
/* SB_FAULT_LOSE_ANSWER: the request is carried out (a write is applied), then the connection is
 * held and closed without an answer, as when a response is lost after the server committed. */
enum sb_fault_kind {
    SB_FAULT_NONE,
    SB_FAULT_ERROR,
    SB_FAULT_TIMEOUT,
    SB_FAULT_DROP,
    SB_FAULT_LOSE_ANSWER
};

/* What the core does to one incoming request. body is owned (free with sb_fault_clear). */
struct sb_fault {
    enum sb_fault_kind kind;
    int status;
    char *body;
    char *retry_after;
    int latency_ms;
    int hold_ms;
};

void sb_faults_init(uint64_t seed);
void sb_faults_free(void);
/* Decides the fault for one request; out is always initialised. */
void sb_faults_decide(const char *method, const char *path, struct sb_fault *out);
void sb_fault_clear(struct sb_fault *f);
/* Replaces the rules from a PUT /_sandbox/faults body. On false *err is a message (caller frees)
 * and nothing changed. */
bool sb_faults_put(const cJSON *body, char **err);
cJSON *sb_faults_json(void);
/* Drops every rule and reseeds with the start-up seed. */
void sb_faults_reset(void);

/* ---- control.c: called with the state lock held ---- */
/* Answers everything under /_sandbox/ (path includes the prefix). */
void sb_control_handle(const struct sb_request *req, struct sb_response *resp);

/* ---- server.c ---- */
/* Starts the HTTP daemon; *bound_port receives the port (useful with port 0). */
bool sb_server_start(const char *bind_addr, int port, int *bound_port);
/* Stops the daemon and the delivery thread; wakes held connections. */
void sb_server_stop(void);
/* Sleeps up to ms; returns early (false) when the server is stopping. */
bool sb_sleep_ms(int ms);

#endif
