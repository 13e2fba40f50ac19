/*
 * sql_obfuscate.h: SQL obfuscation as the Datadog trace agent's default (legacy) obfuscator
 * does it (DataDog/datadog-agent pkg/obfuscate/sql.go and sql_tokenizer.go;
 * ../shared/reference/datadog-apm.md 3.6): string, number, boolean and NULL literals,
 * variables, prepared-statement markers and dollar-quoted strings become `?`; comments and
 * `;` are dropped; `AS alias` is dropped; runs of `?` in brackets collapse (`IN ( ? )`,
 * `VALUES ( ? )`); tokens are joined by single spaces, no space before `,`. The shape of the
 * query is kept, customer data never is.
 */
#ifndef SQL_OBFUSCATE_H
#define SQL_OBFUSCATE_H

#include <stddef.h>

#include "o2d_buf.h"

/* The resource the agent writes when it cannot tokenize a query. */
#define SQL_NON_PARSABLE "Non-parsable SQL query"

/*
 * Appends the obfuscated form of sql[0..len) to out: valid UTF-8 without NUL, whatever the
 * input (a query that is not is refused first; fuzz_sql_obfuscate's oracle checks it).
 * O2D_OK; O2D_ERR_INVALID when the query cannot be tokenized (unterminated string or
 * comment, stray bytes) or obfuscates to nothing: the caller then writes SQL_NON_PARSABLE, as
 * the agent does. O2D_ERR_TOO_LARGE / O2D_ERR_NOMEM from the buffer.
 */
int sql_obfuscate(const char *sql, size_t len, struct o2d_buf *out);

#endif
