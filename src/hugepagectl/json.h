/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tiny JSON emitter for hugepagectl --json: compact, one document per line, always valid UTF-8. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 32

typedef struct Json {
        FILE *f;
        unsigned depth;
        bool need_comma[JSON_DEPTH_MAX];
        bool after_key;
} Json;

#define JSON_INIT { .f = stdout }

void json_begin(Json *j, char c);
void json_end(Json *j, char c);
#define json_begin_object(j) json_begin((j), '{')
#define json_end_object(j) json_end((j), '}')
#define json_begin_array(j) json_begin((j), '[')
#define json_end_array(j) json_end((j), ']')

void json_key(Json *j, const char *key);
void json_string(Json *j, const char *s);
void json_u64(Json *j, uint64_t v);
void json_i64(Json *j, int64_t v);
void json_double(Json *j, double v);
void json_bool(Json *j, bool v);
void json_null(Json *j);
