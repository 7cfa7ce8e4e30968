/*
 * Error codes shared by the agent, certctl and the wire protocol.
 *
 * The set is closed and documented (README, certctl(1)): a code's number and
 * wire name never change once released.  Functions that can fail return 0 on
 * success or a negative code (-E_BAD_INPUT), with words in a `char **cause`.
 */
#ifndef CERTAGENT_ERR_H
#define CERTAGENT_ERR_H

/* printf-format checking that also holds for mingw-w64's C99 stdio. */
#if defined(__MINGW32__)
#define ERR_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define ERR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ERR_PRINTF(f, a)
#endif

enum err_code {
    E_OK = 0,
    E_BAD_INPUT = 1,   /* the request or a file in it is malformed or invalid */
    E_NOT_FOUND = 2,   /* no such certificate, version or file */
    E_EXISTS = 3,      /* the thing to create already exists */
    E_DENIED = 4,      /* the peer may not do this */
    E_BUSY = 5,        /* another change to the same object is in progress */
    E_IO = 6,          /* a file or socket operation failed */
    E_CRYPTO = 7,      /* a cryptographic operation failed */
    E_PROTO = 8,       /* the peer broke the wire protocol */
    E_VERSION = 9,     /* protocol versions do not match */
    E_UNKNOWN_OP = 10, /* the agent does not know this operation */
    E_TOO_BIG = 11,    /* a frame, file or reply exceeds its limit */
    E_INTERNAL = 12,   /* a bug: please report it */
    E_NOMEM = 13,      /* out of memory */
    E_ACME = 14,       /* the ACME CA refused or failed (problem document in detail) */
    E_UNAVAILABLE = 15 /* the agent is shutting down or overloaded */
};
#define E_MAX E_UNAVAILABLE

/* Wire name of a code ("E_NOT_FOUND"); accepts positive or negative codes. */
const char *err_name(int code);
/* One-line human description of a code. */
const char *err_message(int code);
/* Parses a wire name; returns the positive code or -1 when unknown. */
int err_from_name(const char *name, unsigned long len);

/*
 * Formats a heap string for a `char **cause` out-parameter.  Never fails
 * visibly: on allocation failure *cause is set to NULL.  Does nothing when
 * cause is NULL.
 */
void err_set(char **cause, const char *fmt, ...) ERR_PRINTF(2, 3);

#endif
