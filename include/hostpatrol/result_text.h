/*
 * result_text.h - a stored result's measured values in words and human units, for people
 * reading a terminal: "21% used of 25 GiB", "0.45 per CPU (load 0.89 0.76 0.60, 2 CPUs)",
 * "200 in 1.3 ms". The values object and its units are those of docs/results.md; a value that
 * is missing or of the wrong type is left out, never guessed. Pure; thread-safe.
 *
 * The text can hold strings a probed host or the API answered (a TLS version, a node
 * condition's status): a caller printing it to a terminal escapes it (term_text_escape).
 */
#ifndef HOSTPATROL_RESULT_TEXT_H
#define HOSTPATROL_RESULT_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* result_text_values: what result (a stored result object: "kind" and "values"; borrowed)
 * measured, in words, into buf (cap bytes, borrowed; cap > 0), always NUL-terminated, cut to
 * fit. "" when it has nothing to show (no values, an unknown kind). */
void result_text_values(const json_t *result, char *buf, size_t cap);

/* result_text_bytes: a byte count in binary units: "512 B", "1.5 KiB", "25 GiB" (1 decimal
 * below 10 of a unit, none above). */
void result_text_bytes(double bytes, char *buf, size_t cap);

/* result_text_ms: a duration in milliseconds: "0.042 ms", "0.42 ms", "1.3 ms", "13 ms",
 * "1.2 s" (3 significant digits at most). */
void result_text_ms(double ms, char *buf, size_t cap);

/* result_text_percent: a percentage to 0.1, without a trailing ".0": "21%", "20.6%". */
void result_text_percent(double pct, char *buf, size_t cap);

#endif
