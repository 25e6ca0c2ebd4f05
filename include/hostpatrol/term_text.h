/*
 * term_text.h - text from untrusted sources (a HostInspection's names, targets, paths, reasons:
 * whatever a resource's author wrote, and what a probed server answered) made safe to print on a
 * terminal. Every byte a terminal would act on is shown as \xNN instead: C0 controls (ESC, CR,
 * BEL, ...), DEL, the C1 controls U+0080..U+009F, and bytes that are not valid UTF-8 (a lone 0x9B
 * is an 8-bit CSI to some terminals). Valid UTF-8 text passes unchanged. Pure; thread-safe.
 */
#ifndef HOSTPATROL_TERM_TEXT_H
#define HOSTPATROL_TERM_TEXT_H

#include <stddef.h>

/* term_text_escape: s (borrowed, NUL-terminated; NULL is "") escaped into buf (cap bytes,
 * borrowed; cap > 0), always NUL-terminated, cut before an escape or a UTF-8 sequence that does
 * not fit. Returns the length the whole escaped text has (NUL excluded): more than cap - 1
 * means it was cut. */
size_t term_text_escape(const char *s, char *buf, size_t cap);

#endif
