/* compiler.h - attribute shorthands shared by every module. */
#ifndef SVC_COMPILER_H
#define SVC_COMPILER_H

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))

#endif
