/* SPDX-License-Identifier: Apache-2.0 */
/* The status codes answers carry (gRPC's), for code that answers without ttrpc. */
#pragma once

enum ttrpc_code {
        TTRPC_OK = 0,
        TTRPC_CANCELLED = 1,
        TTRPC_UNKNOWN = 2,
        TTRPC_INVALID_ARGUMENT = 3,
        TTRPC_DEADLINE_EXCEEDED = 4,
        TTRPC_NOT_FOUND = 5,
        TTRPC_ALREADY_EXISTS = 6,
        TTRPC_PERMISSION_DENIED = 7,
        TTRPC_RESOURCE_EXHAUSTED = 8,
        TTRPC_FAILED_PRECONDITION = 9,
        TTRPC_ABORTED = 10,
        TTRPC_OUT_OF_RANGE = 11,
        TTRPC_UNIMPLEMENTED = 12,
        TTRPC_INTERNAL = 13,
        TTRPC_UNAVAILABLE = 14,
};
