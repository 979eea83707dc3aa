/*
 * Promela model of baton's reactor protocol (lib/reactor.cc,
 * lib/internal/leader_follower.cc, lib/internal/connection_table.cc).
 * docs/model.md maps every variable here to the code.
 *
 * Three workers share one epoll; one connection slot is used by two
 * successive connections with the same fd number (the reuse case); a peer
 * sends, then hangs up; a foreign thread writes to and closes the first
 * connection by id; Stop happens either early (at any point) or after the
 * peer is done. Mutants (-DMUTANT_...) each remove one guard.
 *
 * The owner skips a re-arm that would change nothing (Rearm,
 * OwnerState::armed): when it holds the claim through a request (not an
 * event) and no event was taken since its last re-arm, with the same
 * interest. KEEP_ARMED_ON_PENDING (the belief survives a busy event) and
 * KEEP_ARMED_ON_DISPATCH (it survives an event that was claimed) must
 * lose an event.
 *
 * -DCONNECT: the first connection is an outbound one (Reactor::Connect,
 * lib/internal/connector.cc): it starts in kConnecting, armed for EPOLLOUT
 * only, with a connect-timeout timer whose expiry travels as a kTimerDue
 * request through the claim protocol (a timerfd event taken by a worker,
 * then TryClaim). The kernel may complete the connect or never do so.
 */

#ifndef NWORKERS
#define NWORKERS 3
#endif
#define LIFETIMES 2
#define MSGS 1

#define EV_CONN 1
#define EV_WAKE 2
#define EV_TIMER 3

/* The peer can send once the kernel has the connection established. */
#ifdef CONNECT
#define CONNECTED (!connecting || writable)
#else
#define CONNECTED true
#endif

/* ---- LeaderFollowerGate ------------------------------------------------ */
bool mu;                 /* the gate's mutex */
bool leader;             /* leader_ */
bool shut;               /* shutdown_ */
byte sleeping;           /* sleeping_ */
byte wakeups;            /* wakeups_ */
byte cv_waiters;         /* threads blocked in the condition variable */
byte cv_tokens;          /* signals delivered and not yet consumed */

/* ---- epoll, as the kernel keeps it for the connection's fd ---------------- */
bool registered;         /* fd is in the epoll set */
bool armed;              /* ONESHOT: armed until an event is delivered */
byte reg_gen;            /* generation in epoll_event.data (the id) */
bool ready;              /* readable: data or EOF waiting (level-triggered) */
bool eof;                /* what is readable includes the peer's EOF */
byte wake_count;         /* eventfd counter (Post, Stop) */
bool wake_armed = true;  /* the eventfd's ONESHOT arming */

/* ---- the slot (ConnectionTable::Slot::state) ------------------------------ */
byte gen = 1;            /* generation */
bool live;               /* kLive */
bool claimed;            /* kClaimed */
bool pending;            /* kPending */
bool close_req;          /* kCloseRequested */
bool out_pending;        /* bytes queued by a foreign Write, not yet sent */
bool known_armed;        /* OwnerState::armed: the owner believes it armed */
bool known_conn;         /* OwnerState::armed_interest: armed while connecting */

#ifdef CONNECT
/* ---- outbound connect (connection_state.h kConnecting) ------------------- */
bool connecting;         /* phase kConnecting: no OnOpen yet */
bool opened;             /* OnOpen has run for the connection in the slot */
bool writable;           /* the kernel completed the connect (EPOLLOUT) */
bool timer_armed;        /* the connect deadline's TimerQueue entry */
byte timer_gen;          /* the id its callback will raise kTimerDue on */
bool timer_due;          /* kTimerDue */
#endif

/* ---- tasks (ReactorCore::tasks_): Service tasks handed over by Kick ------- */
byte tasks;

/* ---- bookkeeping for the properties ---------------------------------------- */
byte in_wait;            /* threads inside epoll_wait */
byte in_handler;         /* threads inside the connection's handler */
byte closed_count[LIFETIMES + 2];
byte lifetimes;          /* connections opened in the slot */
bool stop;               /* Stop() called */
bool stopped;            /* Wait() finished */
bool early_stop;         /* chosen at start: Stop at any time, or after the peer */
bool peer_done;
byte workers_exited;

inline lock() { atomic { !mu -> mu = true } }
inline unlock() { mu = false }

inline cv_wait() {
  cv_waiters++;
  mu = false;
  atomic { (cv_tokens > 0 && !mu) -> cv_tokens--; cv_waiters--; mu = true }
}

inline become_leader(ok) {
  lock();
  do
#ifndef MUTANT_NO_LEADER_EXCLUSION
  :: (leader && !shut) ->
       sleeping++;
       cv_wait();
       sleeping--;
       if :: wakeups > 0 -> wakeups-- :: else -> skip fi
#endif
  :: else -> break
  od;
  if
  :: shut -> ok = false
  :: else -> leader = true; ok = true
  fi;
  unlock()
}

inline promote() {
  lock();
#ifndef MUTANT_KEEP_ROLE
  leader = false;
#endif
  if
  :: (sleeping > wakeups) ->
       wakeups++;
       if :: cv_waiters > cv_tokens -> cv_tokens++ :: else -> skip fi
  :: else -> skip
  fi;
  unlock()
}

inline gate_shutdown() {
  lock();
  shut = true;
  cv_tokens = cv_waiters;
  unlock()
}

/* CloseNow, by the claim holder: OnClose, close(fd), Free (generation bump). */
inline close_now() {
  atomic {
    closed_count[gen]++;
    assert(closed_count[gen] == 1);     /* closed exactly once */
    registered = false; armed = false; ready = false; eof = false;
    out_pending = false; known_armed = false; known_conn = false;
#ifdef CONNECT
    connecting = false; opened = false; writable = false;
    timer_armed = false; timer_due = false;   /* Teardown cancels the timer */
#endif
    gen++; live = false; claimed = false; pending = false; close_req = false
  }
}

/* Rearm: epoll_ctl(MOD), unless the owner knows epoll has it armed with
 * the same interest already. */
#ifdef CONNECT
#define SAME_INTEREST (known_conn == connecting)
#else
#define SAME_INTEREST true
#endif
inline rearm(mygen) {
  if
  :: (registered && known_armed && SAME_INTEREST) -> skip
  :: (registered && !(known_armed && SAME_INTEREST)) ->
       atomic {
         armed = true; reg_gen = mygen; known_armed = true;
#ifdef CONNECT
         known_conn = connecting
#else
         skip
#endif
       }
  :: else -> skip
  fi
}

/*
 * Service: the owner's loop (ReactorCore::Service / ServeOnce / Rearm /
 * Release). `mygen` is the generation the caller claimed. `spec` allows one
 * speculative re-read round (RunDeferred) before re-arming.
 */
inline service(mygen, again, closing, spec) {
  spec = true;
  do
  :: true ->
     atomic {
       in_handler++;
       assert(in_handler == 1);          /* one thread per connection */
       assert(live && claimed && gen == mygen)
     };
     closing = false;
     if :: close_req -> close_req = false; closing = true :: else -> skip fi;
#ifdef CONNECT
     if
     :: connecting ->                     /* ServeConnecting */
          if
          :: closing -> skip              /* OnClose(CANCELLED), no OnOpen */
          :: else ->
               if
               :: writable ->             /* SO_ERROR 0: OnOpen */
                    connecting = false; opened = true;
                    timer_armed = false;  /* cancel the deadline */
                    timer_due = false
               :: else ->
                    if
                    :: timer_due -> timer_due = false; closing = true  /* timed out */
                    :: else -> skip
                    fi
               fi
          fi
     :: else ->
          timer_due = false;              /* nothing due: a no-op */
          if
          :: ready ->                     /* read: data or EOF */
               assert(opened);            /* never OnData before OnOpen */
               if :: eof -> closing = true :: else -> ready = false fi
          :: else -> skip
          fi;
          out_pending = false             /* flush */
     fi;
#else
     if
     :: ready ->                          /* read: data or EOF */
          if :: eof -> closing = true :: else -> ready = false fi
     :: else -> skip
     fi;
     out_pending = false;                 /* flush */
#endif
     in_handler--;
     if
     :: closing -> close_now(); break
     :: else -> skip
     fi;
     if
     :: spec -> spec = false; again = true    /* speculative re-read, still claimed */
     :: true ->
#ifndef MUTANT_REARM_AFTER_RELEASE
        rearm(mygen);
#endif
        atomic {
#ifndef MUTANT_IGNORE_PENDING
          if
          :: pending -> pending = false; again = true;
#ifndef MUTANT_KEEP_ARMED_ON_PENDING
               known_armed = false    /* a busy event may have disarmed it */
#else
               skip
#endif
          :: else -> claimed = false; again = false
          fi
#else
          pending = false; claimed = false; again = false
#endif
        };
#ifdef MUTANT_REARM_AFTER_RELEASE
        rearm(mygen);
#endif
     fi;
     if :: again -> skip :: else -> break fi
  od
}

inline run_tasks(n, mygen, again, closing, spec) {
  atomic { n = tasks; tasks = 0 };
  do
  :: n > 0 -> n--; mygen = gen; service(mygen, again, closing, spec)
  :: else -> break
  od
}

proctype Worker() {
  bool ok, again, closing, spec;
  byte ev, evgen, mygen, n;
  do
  :: become_leader(ok);
     if :: !ok -> break :: else -> skip fi;
     atomic { in_wait++; assert(in_wait == 1) };   /* one thread in epoll_wait */
end_wait:
     atomic {
       if
#ifdef CONNECT
       :: (registered && armed && ((!connecting && ready) || (connecting && writable))) ->
            armed = false; ev = EV_CONN; evgen = reg_gen
       :: timer_armed -> timer_armed = false; ev = EV_TIMER; evgen = timer_gen
#else
       :: (registered && armed && ready) -> armed = false; ev = EV_CONN; evgen = reg_gen
#endif
       :: (wake_armed && wake_count > 0) -> wake_armed = false; ev = EV_WAKE
       fi;
       in_wait--
     };
     promote();
     if
     :: ev == EV_CONN ->
          /* Dispatch: TryClaim(evgen) */
          atomic {
            if
#ifndef MUTANT_NO_GENERATION_CHECK
            :: (gen != evgen || !live) -> ev = 0                      /* stale */
#else
            :: (!live) -> ev = 0
#endif
            :: else ->
                 if
                 :: claimed -> pending = true; ev = 0                  /* busy */
                 :: else -> claimed = true
                 fi
            fi
          };
          if
          :: ev == EV_CONN ->
               assert(evgen == gen);   /* the event reached its own connection */
#ifndef MUTANT_KEEP_ARMED_ON_DISPATCH
               known_armed = false;    /* delivering it disarmed the fd */
#endif
               mygen = gen;
               service(mygen, again, closing, spec)
          :: else -> skip
          fi
#ifdef CONNECT
     :: ev == EV_TIMER ->
          /* The deadline's callback: ServeRequest(id, kTimerDue). */
#ifndef MUTANT_TIMER_NO_CLAIM
          atomic {
            if
            :: (gen != evgen || !live) -> ev = 0                      /* stale */
            :: else ->
                 timer_due = true;
                 if
                 :: claimed -> pending = true; ev = 0                  /* busy */
                 :: else -> claimed = true
                 fi
            fi
          };
#else
          /* serves without claiming: runs beside the owner */
          atomic { if :: (gen != evgen || !live) -> ev = 0 :: else -> timer_due = true fi };
#endif
          if
          :: ev == EV_TIMER -> mygen = evgen; service(mygen, again, closing, spec)
          :: else -> skip
          fi
#endif
     :: ev == EV_WAKE ->
          wake_count = 0;                     /* read(eventfd) */
          run_tasks(n, mygen, again, closing, spec);
#ifndef MUTANT_SWALLOW_STOP
          if :: stop -> wake_count++ :: else -> skip fi;   /* keep Stop visible */
#endif
          wake_armed = true
     fi
  od;
  run_tasks(n, mygen, again, closing, spec);    /* tasks accepted before Stop */
  workers_exited++
}

/* Accepts: opens a connection in the slot (claimed from birth), registers
 * it and serves it like OpenConnection does. */
proctype Acceptor() {
  bool again, closing, spec;
  byte mygen;
  do
  :: atomic {
       (!live && lifetimes < LIFETIMES && !stop) ->
         live = true; claimed = true; lifetimes++; mygen = gen;
         registered = true;
#ifdef CONNECT
         if
         :: lifetimes == 1 ->              /* Connect: kConnecting + deadline */
              connecting = true; timer_armed = true; timer_gen = gen
         :: else -> opened = true
         fi
#endif
     };
     service(mygen, again, closing, spec)
  :: (lifetimes == LIFETIMES || stop) -> break
  od;
  workers_exited++    /* accepting runs on a worker: Wait() joins it too */
}

/* The client: sends MSGS messages (one at a time: `ready` is level), then
 * hangs up; follows each new connection in the slot. */
proctype Peer() {
  byte sent, peer_gen;
  do
  :: atomic { (live && gen != peer_gen) -> peer_gen = gen; sent = 0 }
#ifdef CONNECT
  :: atomic { (live && connecting && !writable) -> writable = true }  /* connect completes */
#endif
  :: atomic { (live && gen == peer_gen && CONNECTED &&
                !ready && !eof && sent < MSGS) ->
                ready = true; sent++ }
  :: atomic { (live && gen == peer_gen && CONNECTED &&
                !ready && !eof && sent == MSGS) ->
                ready = true; eof = true }
  :: atomic { (lifetimes == LIFETIMES && !live) -> peer_done = true; break }
  :: atomic { stopped -> break }
  od
}

/* Kick: claim for the foreign thread and hand the claim to a worker, or
 * leave the work pending for the owner (ReactorCore::Kick). */
inline kick(tgen, is_close) {
  atomic {
    if
    :: (gen != tgen || !live) -> skip                       /* stale id */
    :: else ->
         if :: is_close -> close_req = true :: else -> out_pending = true fi;
#ifndef MUTANT_FOREIGN_MOD
         if
         :: claimed -> pending = true
         :: else ->
              claimed = true;
              if :: !stop -> tasks++; wake_count++ :: else -> skip fi
         fi
#else
         /* re-arm directly instead of claiming */
         if :: registered -> armed = true; ready = true :: else -> skip fi
#endif
    fi
  }
}

proctype Foreign() {
  byte target;
  atomic { (live || lifetimes == LIFETIMES || stopped) -> target = gen };
  kick(target, false);   /* Reactor::Write(id) */
  kick(target, true)     /* Reactor::Close(id) */
}

proctype Stopper() {
  byte g;
  if :: early_stop -> skip :: else -> peer_done fi;
  stop = true;
  gate_shutdown();
  wake_count++;
  (workers_exited == NWORKERS + 1);
  /* Wait(): CloseAllAfterJoin — every worker has exited */
#ifdef CONNECT
  timer_armed = false;                   /* timers_.Clear() */
#endif
  if :: live -> claimed = true; close_now() :: else -> skip fi;
  stopped = true
}

/* When nothing can move any more, everything must be finished. */
proctype Monitor() {
  byte g;
  atomic {
    timeout ->
      assert(stopped);                 /* Stop terminated: no lost wake-up, no stranded work */
      assert(!live && tasks == 0);
      g = 1;
      do
      :: g <= lifetimes -> assert(closed_count[g] == 1); g++
      :: else -> break
      od
  }
}

init {
  atomic {
    if :: early_stop = true :: early_stop = false fi;
    run Worker(); run Worker();
#if NWORKERS == 3
    run Worker();
#endif
    run Acceptor(); run Peer(); run Foreign(); run Stopper(); run Monitor()
  }
}
