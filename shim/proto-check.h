/* SPDX-License-Identifier: Apache-2.0 */
/* A check of encoded protobuf bytes that protobuf-c's unpack does not make: a string
 * field holding a NUL byte. protobuf-c hands such a string over cut at the NUL, so that
 * "ok\0/../x" would reach us as "ok" -- an id other than the one sent. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* 0 if every string field (in nested messages too) is free of NUL bytes; -EILSEQ and
 * the field's name in *ret_field if not; -EINVAL if the bytes are not a well-formed
 * message at all. */
int proto_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        const char **ret_field);
