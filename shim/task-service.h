/* SPDX-License-Identifier: Apache-2.0 */
/* The task API: containerd.task.v2.Task, and the same messages under containerd 2.x's
 * name containerd.task.v3.Task, served from one table of methods. */
#pragma once

#include <stddef.h>

#define TASK_SERVICE_V2 "containerd.task.v2.Task"
#define TASK_SERVICE_V3 "containerd.task.v3.Task"

struct shim;
struct ttrpc_call;

/* The shim's dispatch function (userdata: the struct shim). */
void task_service_dispatch(struct ttrpc_call *call, void *userdata);
