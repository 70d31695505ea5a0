// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* crashscope's system-call recorder.
 *
 * Every system call of a watched process (a set of tgids that follows forks, or every
 * process but the recorder) produces one raw record when it returns: the raw arguments
 * (still in the saved user registers), the return value, and up to two snapshots of user
 * memory chosen by a per-syscall rule table filled in by user space (a path, a buffer, a
 * socket address, the new argv). One hook instead of an entry and an exit hook halves what
 * every process on the node pays while the probe is attached, and a watched call costs one
 * record instead of two; user space writes each record as the standard entry and exit
 * events. Calls that never return (exit, exit_group) are read from the dying task's saved
 * registers at process exit. Keeping the kernel side generic keeps it small enough for the
 * verifier and lets the event layouts live in tested Rust.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define SLOT_MAX 65535u /* most bytes one snapshot keeps */
#define NR_MAX 512      /* syscall numbers covered by the rule table */

enum kind { K_CALL = 1, K_PROCEXIT = 2, K_SIGNAL = 3, K_OOM = 4 };

/* How a snapshot is taken (rule.how). */
enum how {
	H_NONE = 0,
	H_STR = 1,        /* NUL-terminated user string at args[arg] */
	H_BUF_RET = 2,    /* args[arg], as many bytes as the call returned */
	H_BUF_LEN = 3,    /* args[arg], args[len] bytes */
	H_ADDR_LEN = 4,   /* socket address args[arg], args[len] bytes (at most 128) */
	H_ADDR_PLEN = 5,  /* socket address args[arg], *(u32 *)args[len] bytes (accept, recvfrom) */
	H_IOV_RET = 6,    /* first iovec of args[arg], as many bytes as returned */
	H_MSG_RET = 7,    /* first iovec of the msghdr at args[arg], as many bytes as returned */
	H_MSG_NAME = 8,   /* msg_name of the msghdr at args[arg] */
	H_MM_ARGS = 9,    /* the new program's argv, and its environment when record_env
			   * (a successful execve; args[5] is set to argv's length) */
	H_MMSG_IOV = 10,  /* first iovec of the first message of the mmsghdr array at args[arg] */
	H_EXEC_NAME = 11, /* the executed file: the new program's execfn, or args[arg] on failure */
};

struct slot_rule {
	u8 how;
	u8 arg;
	u8 len;
	u8 socket; /* payload of a socket call: read up to snaplen_net (DNS answers) */
};

/* rule.flags */
#define R_PROC 1 /* the call changes who the process is (clone, exec, prctl): record its
		  * name and cgroup, which other calls leave out to stay cheap */

struct rule {
	struct slot_rule slot[2];
	u32 flags;
};

/* The record header; the snapshots follow it, slot 1 right after slot 0. */
struct rec {
	u64 ts;
	u32 tid;
	u32 pid;
	u32 ppid;
	u16 kind;
	u16 nr;
	s64 ret;
	u64 args[6];
	u32 len[2];
	u32 flags; /* bit i: snapshot i could not be read */
	u32 pad;
	char comm[16];
	u64 cgroup; /* the thread's cgroup v2 id */
	u64 entered; /* when the call began (only with the entry hook), else 0 */
	u8 data[2 * (SLOT_MAX + 1)];
};

#define HDR_SIZE (sizeof(struct rec) - 2 * (SLOT_MAX + 1))

const volatile u32 self_tgid = 0;
const volatile u32 trace_all = 0;
const volatile u32 snaplen = 256;
const volatile u32 snaplen_net = 512;
const volatile u64 wake_bytes = 1 << 20;
/* Environments hold secrets: they are read only when the user asks. */
const volatile u32 record_env = 0;
/* The entry hook is loaded (on request: every process on the machine pays for a second
 * hook): calls carry the time they began, so readers see how long each took. */
const volatile u32 latency = 0;

/* When the current system call of a watched thread began (latency only). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} entered SEC(".maps");

/* One ring buffer per CPU (user space creates them and fills this array; a CPU that was
 * offline at start shares the first online CPU's). With one ring for the machine every record took the
 * ring's lock: two busy CPUs spent a quarter of each traced call waiting on each other. */
struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, u32);
	__array(values, struct ring);
} rings SEC(".maps");

/* Watched cgroup v2 ids (-> 1): a process that executes a program inside one of them, or
 * inside a cgroup below one, joins the watched processes. A new container's first process and a process
 * entering a container by `kubectl exec` are nobody's child there; both exec. Checking at
 * exec rather than at every system call keeps unwatched processes' cost where it was. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u8);
} cgroups SEC(".maps");

/* Set at load when cgroups are watched: otherwise nobody pays the lookup. */
const volatile u32 watch_cgroups = 0;

/* Watched processes: a bitmap by tgid, 64 per word (sized from pid_max at load);
 * children are added at fork. Every system call of every process on the machine asks it,
 * so it is an array (the verifier inlines the lookup: a few instructions where a hash
 * lookup is a helper call hashing the key). User space sets bits with atomic operations on
 * its mmap of the map, so neither side loses the other's updates to a shared word. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u64);
} tgids SEC(".maps");

static __always_inline bool in_set(u32 tgid)
{
	u32 word = tgid >> 6;
	u64 *w = bpf_map_lookup_elem(&tgids, &word);
	return w && ((*w >> (tgid & 63)) & 1);
}

static __always_inline void set_add(u32 tgid)
{
	u32 word = tgid >> 6;
	u64 *w = bpf_map_lookup_elem(&tgids, &word);
	if (w)
		__sync_fetch_and_or(w, 1ull << (tgid & 63));
}

static __always_inline void set_remove(u32 tgid)
{
	u32 word = tgid >> 6;
	u64 *w = bpf_map_lookup_elem(&tgids, &word);
	if (w)
		__sync_fetch_and_and(w, ~(1ull << (tgid & 63)));
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, u32);
	__type(value, struct rule);
} rules SEC(".maps");

/* Per-CPU scratch record (too big for the stack and for a per-CPU map). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, struct rec);
} scratch SEC(".maps");

/* Counters per CPU: 0 records, 1 records dropped (ring buffer full), 2 snapshots unreadable;
 * 3 is the queue length this CPU saw last (see wake_flag). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static __always_inline void count(u32 which)
{
	u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline bool watched(u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (trace_all)
		return true;
	return in_set(tgid);
}

/* A record with the calling thread's identity; `who` adds its name and cgroup. */
static __always_inline struct rec *start(u16 kind, u16 nr, bool who)
{
	u32 cpu = bpf_get_smp_processor_id();
	struct rec *r = bpf_map_lookup_elem(&scratch, &cpu);
	if (!r)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	u64 id = bpf_get_current_pid_tgid();
	r->ts = bpf_ktime_get_boot_ns();
	r->tid = (u32)id;
	r->pid = id >> 32;
	r->ppid = t->real_parent->tgid;
	r->kind = kind;
	r->nr = nr;
	r->ret = 0;
	r->len[0] = 0;
	r->len[1] = 0;
	r->flags = 0;
	r->entered = 0;
	if (who) {
		r->cgroup = bpf_get_current_cgroup_id();
		bpf_get_current_comm(&r->comm, sizeof(r->comm));
	} else {
		r->cgroup = 0;
		__builtin_memset(&r->comm, 0, sizeof(r->comm));
	}
	return r;
}

static __always_inline u32 cap(u64 n, u32 limit)
{
	if (n > limit)
		n = limit;
	if (n > SLOT_MAX)
		n = SLOT_MAX;
	return (u32)n;
}

/* Copies n user bytes from src into slot i; returns the bytes kept. */
static __always_inline u32 copy(struct rec *r, u32 off, const void *src, u32 n, bool str)
{
	if (off > SLOT_MAX + 1)
		return 0;
	if (n > SLOT_MAX)
		n = SLOT_MAX;
	/* The compiler may test a wider copy of n than it passes; the verifier needs the
	 * bound on the register that reaches the helper. */
	barrier_var(n);
	n &= SLOT_MAX;
	long got;
	if (!str && n <= 16) {
		/* A small payload (a byte-at-a-time reader's) is read onto the stack first: the
		 * kernel's hardened-usercopy check of a map value as the destination (a vmalloc
		 * area lookup) cost more than the copy itself. */
		u64 tmp[2] = {};
		if (bpf_probe_read_user(tmp, n, src))
			return (u32)-1;
		__builtin_memcpy(&r->data[off], tmp, sizeof(tmp));
		return n;
	}
	if (str) {
		got = bpf_probe_read_user_str(&r->data[off], n, src);
	} else {
		got = bpf_probe_read_user(&r->data[off], n, src) == 0 ? (long)n : -1;
	}
	return got < 0 ? (u32)-1 : (u32)got;
}

static __always_inline void snapshot(struct rec *r, int i, struct slot_rule *s)
{
	u32 off = i == 0 ? 0 : r->len[0];
	if (off > SLOT_MAX + 1)
		return;
	u32 ai = s->arg, li = s->len;
	if (ai > 5 || li > 5)
		return;
	u64 a = r->args[ai];
	u64 l = r->args[li];
	u32 limit = s->socket ? snaplen_net : snaplen;
	u32 n = 0;
	const void *src = (const void *)a;
	bool str = false;
	switch (s->how) {
	case H_STR:
		n = 4096;
		str = true;
		break;
	case H_BUF_RET:
		if (r->ret <= 0)
			return;
		n = cap(r->ret, limit);
		break;
	case H_BUF_LEN:
		n = cap(l, limit);
		break;
	case H_ADDR_LEN:
		n = cap(l, 128);
		break;
	case H_ADDR_PLEN: {
		u32 plen = 0;
		if (r->ret < 0 || !l || bpf_probe_read_user(&plen, sizeof(plen), (void *)l))
			return;
		n = cap(plen, 128);
		break;
	}
	case H_MSG_NAME: {
		/* struct msghdr { void *msg_name; int msg_namelen; struct iovec *msg_iov; ... } */
		u64 hdr[3];
		if (bpf_probe_read_user(hdr, sizeof(hdr), src))
			goto fail;
		src = (const void *)hdr[0];
		n = cap((u32)hdr[1], 128);
		break;
	}
	case H_MMSG_IOV: {
		u64 hdr[3], iov[2];
		if (r->ret <= 0)
			return;
		if (bpf_probe_read_user(hdr, sizeof(hdr), src) ||
		    bpf_probe_read_user(iov, sizeof(iov), (const void *)hdr[2]))
			goto fail;
		src = (const void *)iov[0];
		n = cap(iov[1], limit);
		break;
	}
	case H_IOV_RET:
	case H_MSG_RET: {
		u64 iov[2];
		if (r->ret <= 0)
			return;
		if (s->how == H_MSG_RET) {
			u64 hdr[3];
			if (bpf_probe_read_user(hdr, sizeof(hdr), src))
				goto fail;
			src = (const void *)hdr[2];
		}
		if (bpf_probe_read_user(iov, sizeof(iov), src))
			goto fail;
		src = (const void *)iov[0];
		n = cap(iov[1] < (u64)r->ret ? iov[1] : (u64)r->ret, limit);
		break;
	}
	case H_EXEC_NAME:
		if (r->ret == 0) {
			/* exec copies the filename to the top of the new stack, right above the
			 * environment strings (what AT_EXECFN points at). */
			struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
			src = (const void *)t->mm->env_end;
		}
		n = 4096;
		str = true;
		break;
	case H_MM_ARGS: {
		if (r->ret != 0)
			return;
		struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
		unsigned long s0 = t->mm->arg_start;
		unsigned long e0 = t->mm->arg_end;
		if (e0 <= s0)
			return;
		src = (const void *)s0;
		n = cap(e0 - s0, 4096);
		/* The environment's strings follow argv's on the new stack. After a successful
		 * exec the saved registers are the new program's (zeros): args[5] is free to
		 * say where argv ends. */
		r->args[5] = n;
		if (record_env && t->mm->env_end > e0)
			n = cap(t->mm->env_end - s0, 16384);
		break;
	}
	default:
		return;
	}
	if (!src || !n)
		return;
	u32 got = copy(r, off, src, n, str);
	if (got == (u32)-1)
		goto fail;
	r->len[i & 1] = got;
	return;
fail:
	r->flags |= 1u << (i & 1);
	count(2);
}

/* Whether this record should wake the reader: only when the queue crosses wake_bytes.
 * Waking raises an interrupt on this CPU (in a VM, an exit to the hypervisor costing
 * microseconds); waking on every record while a busy reader lags would cost more than the
 * record. The queue is looked at every 64th record of a CPU (reading it pulls the reader's
 * cache line); a reader that sleeps through a missed crossing polls every 10 ms anyway. */
static __always_inline u64 wake_flag(void *ring)
{
	u32 k_records = 0, k_last = 3;
	u64 *n = bpf_map_lookup_elem(&counters, &k_records);
	u64 *last = bpf_map_lookup_elem(&counters, &k_last);
	if (!n || !last || (*n & 63))
		return BPF_RB_NO_WAKEUP;
	u64 queued = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	u64 before = *last;
	*last = queued;
	return before < wake_bytes && queued >= wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(struct rec *r)
{
	u64 size = HDR_SIZE + (u64)r->len[0] + (u64)r->len[1];
	if (size > sizeof(struct rec))
		size = sizeof(struct rec);
	u32 cpu = bpf_get_smp_processor_id();
	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring || bpf_ringbuf_output(ring, r, size, wake_flag(ring)))
		count(1);
	else
		count(0);
}

/* The hooks' arguments and the current task are typed kernel pointers (BTF): direct loads,
 * relocated by CO-RE, cost a load each where BPF_CORE_READ would cost a helper call. */
static __always_inline void regs_args(struct rec *r, struct pt_regs *regs)
{
	r->args[0] = regs->di;
	r->args[1] = regs->si;
	r->args[2] = regs->dx;
	r->args[3] = regs->r10;
	r->args[4] = regs->r8;
	r->args[5] = regs->r9;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	if (!watched(bpf_get_current_pid_tgid() >> 32))
		return 0;
	long id = regs->orig_ax;
	if (id < 0)
		return 0;
	u32 nr = (u32)id;
	struct rule *ru = bpf_map_lookup_elem(&rules, &nr);
	struct rec *r = start(K_CALL, (u16)id, ru && (ru->flags & R_PROC));
	if (!r)
		return 0;
	r->ret = ret;
	regs_args(r, regs);
	if (latency) {
		u64 *began = bpf_task_storage_get(&entered, bpf_get_current_task_btf(), 0, 0);
		if (began)
			r->entered = *began;
	}
	if (ru) {
		snapshot(r, 0, &ru->slot[0]);
		snapshot(r, 1, &ru->slot[1]);
	}
	emit(r);
	return 0;
}

/* Loaded only with `latency`. */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	if (!watched(bpf_get_current_pid_tgid() >> 32))
		return 0;
	u64 *began = bpf_task_storage_get(&entered, bpf_get_current_task_btf(), 0,
					  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (began)
		*began = bpf_ktime_get_boot_ns();
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ptgid = parent->tgid;
	if (trace_all || !watched(ptgid))
		return 0;
	set_add(child->tgid);
	return 0;
}

#define CGROUP_DEPTH 12

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	if (!watch_cgroups || trace_all)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid || in_set(tgid))
		return 0;
	for (int level = 1; level <= CGROUP_DEPTH; level++) {
		u64 id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		if (bpf_map_lookup_elem(&cgroups, &id)) {
			set_add(tgid);
			break;
		}
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	u32 tgid = task->tgid;
	u32 pid = task->pid;
	if (!watched(tgid))
		return 0;
	struct rec *r = start(K_PROCEXIT, 0, true);
	if (r) {
		r->args[0] = (u64)(s64)task->exit_code;
		/* The call the thread was in (exit, exit_group: they never return) and its
		 * first argument; -1 when it died outside a system call. */
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		r->args[1] = regs ? regs->orig_ax : (u64)-1;
		r->args[2] = regs ? regs->di : 0;
		emit(r);
	}
	if (pid == tgid && !trace_all)
		set_remove(tgid);
	return 0;
}

/* Who sent a signal on its way to a watched process, by (target tgid, signal): kept from
 * generation to delivery, where the target runs and the sender is no longer known. */
struct sender {
	u32 pid;
	u32 sig; /* the signal as sent */
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct sender);
} senders SEC(".maps");

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	u32 tgid = task->tgid;
	if (!trace_all && !in_set(tgid))
		return 0;
	if (sig == 17 /* SIGCHLD */ || sig == 28 /* SIGWINCH */ || sig == 23 /* SIGURG */)
		return 0;
	u64 key = ((u64)tgid << 32) | (u32)sig;
	struct sender s = {};
	s.pid = bpf_get_current_pid_tgid() >> 32;
	s.sig = sig;
	bpf_get_current_comm(&s.comm, sizeof(s.comm));
	bpf_map_update_elem(&senders, &key, &s, BPF_ANY);
	/* A fatal signal without a handler is delivered as SIGKILL to every thread of the
	 * group: key 0 keeps the last sender for that case. */
	key = (u64)tgid << 32;
	bpf_map_update_elem(&senders, &key, &s, BPF_ANY);
	return 0;
}

SEC("tp_btf/signal_deliver")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!watched(tgid))
		return 0;
	struct rec *r = start(K_SIGNAL, 0, true);
	if (!r)
		return 0;
	r->args[0] = (u64)sig;
	/* The sender, when the signal was generated while the probe ran: its pid, and its
	 * name in args[2..3]. */
	u64 key = ((u64)tgid << 32) | (u32)sig;
	struct sender *s = bpf_map_lookup_elem(&senders, &key);
	if (!s && sig == 9) {
		key = (u64)tgid << 32;
		s = bpf_map_lookup_elem(&senders, &key);
	}
	if (s) {
		r->args[1] = s->pid;
		__builtin_memcpy(&r->args[2], s->comm, sizeof(s->comm));
		r->args[4] = s->sig;
	} else {
		r->args[1] = 0;
		r->args[2] = 0;
		r->args[3] = 0;
		r->args[4] = 0;
	}
	emit(r);
	return 0;
}

/* The OOM killer chose a victim; it runs in whichever task ran out of memory, so the
 * record names the victim, not the current task. */
SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom, struct task_struct *task, uid_t uid)
{
	u32 tgid = task->tgid;
	if (!trace_all && !in_set(tgid))
		return 0;
	struct rec *r = start(K_OOM, 0, true);
	if (!r)
		return 0;
	r->tid = task->pid;
	r->pid = tgid;
	r->ppid = task->real_parent->tgid;
	BPF_CORE_READ_STR_INTO(&r->comm, task, comm);
	r->args[0] = bpf_get_current_pid_tgid() >> 32;
	emit(r);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
