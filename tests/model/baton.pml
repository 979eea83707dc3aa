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
 * Parking (kParked in the slot's state word, lib/internal/connection_table.cc;
 * the parked list in lib/internal/scheduler.cc). After a round that read
 * input, with the fd not believed armed (OwnerState::armed false: an event
 * was taken since the last re-arm), the owner may park the connection
 * instead of Rearm + Release: one CAS sets kParked (kClaimed stays) unless
 * kPending or a request is set (then it clears kPending and serves again,
 * as a failed Release does); on success it records (slot, generation) in
 * the scheduler's parked list under the scheduler mutex and forgets it. A
 * parked connection leaves that state exactly once, through one CAS: a
 * takeover by TryClaim (a foreign Write / Close, or an event: kParked
 * cleared, the caller owns it) or an expiry by a leader whose bounded
 * epoll_wait timed out (kParked cleared if the generation matches). A
 * leader's wait is bounded while threads run (running_) or entries are
 * parked. Whether the owner parks or re-arms, and when a bounded wait
 * times out (the entry's bound has passed), are nondeterministic. Mutants:
 * TAKEOVER_KEEPS_PARKED (two owners), NO_PARK_EXPIRY and NO_PARK_BOUND
 * (stranded input), POLL_IGNORES_PARKED (a poll between passes that found
 * nothing once the other threads went idle leaves the next wait unbounded
 * with entries parked: stranded input), LIST_BEFORE_PARK (the entry is
 * recorded before the CAS: an expiry drops it first), PARK_IGNORES_PENDING
 * (a request that reached the owner is left in the parked word: only
 * parked_owes_nothing fails; the expiry serves what it left, late but not
 * lost).
 *
 * -DCONNECT: the first connection is an outbound one (Reactor::Connect,
 * lib/internal/connector.cc): it starts in kConnecting, armed for EPOLLOUT
 * only, with a connect-timeout timer whose expiry travels as a kTimerDue
 * request through the claim protocol (a timerfd event taken by a worker,
 * then TryClaim). The kernel may complete the connect or never do so.
 */

/* -DNO_PARK: the owner never parks, and the scheduler keeps none of the
 * bookkeeping parking needs (running_, the bound): the model as it was
 * before parking. The mutants of guards that parking does not touch are
 * searched in it (run_spin.sh), as fast as before. */

#ifndef NWORKERS
#define NWORKERS 3
#endif
#ifndef LIFETIMES
#define LIFETIMES 2
#endif
#define MSGS 1

#define EV_CONN 1
#define EV_WAKE 2
#define EV_TIMER 3
#define EV_EXPIRE 4     /* a bounded epoll_wait timed out with entries parked */

#define PCAP 3          /* the parked list's room in the model (asserted) */

/* The peer can send once the kernel has the connection established. */
#ifdef CONNECT
#define CONNECTED (!connecting || writable)
#define REQUESTS (close_req || timer_due)
#else
#define CONNECTED true
#define REQUESTS close_req
#endif

/* ---- LeaderFollowerGate ------------------------------------------------ */
bool mu;                 /* the gate's mutex */
bool leader;             /* leader_ */
bool shut;               /* shutdown_ */
byte sleeping;           /* sleeping_ */
byte wakeups;            /* wakeups_ */
byte cv_waiters;         /* threads blocked in the condition variable */
byte cv_tokens;          /* signals delivered and not yet consumed */
byte running;            /* running_: threads between Handoff and their next Next */
bool bounded;            /* the leader's epoll_wait has a timeout (Next, RescueDue) */

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
bool parked;             /* kParked: claimed, but no thread holds it */
bool out_pending;        /* bytes queued by a foreign Write, not yet sent */
bool known_armed;        /* OwnerState::armed: the owner believes it armed */
bool known_conn;         /* OwnerState::armed_interest: armed while connecting */

/* ---- the scheduler's parked list (under mu) -------------------------------- */
byte plist[PCAP];        /* the generation of each entry, oldest first */
byte np;                 /* entries in plist */

#ifdef CONNECT
/* ---- outbound connect (connection_state.h kConnecting) ------------------- */
bool connecting;         /* phase kConnecting: no OnOpen yet */
bool opened;             /* OnOpen has run for the connection in the slot */
bool writable;           /* the kernel completed the connect (EPOLLOUT) */
bool timer_armed;        /* the connect deadline's TimerQueue entry */
byte timer_gen;          /* the id its callback will raise kTimerDue on */
bool timer_due;          /* kTimerDue */
#endif

/* ---- tasks (EventLoop::tasks_): Service tasks handed over by Kick -------- */
byte tasks;

/* ---- bookkeeping for the properties ---------------------------------------- */
byte in_wait;            /* threads inside epoll_wait */
byte in_handler;         /* threads inside the connection's handler */
byte owners;             /* holders of the claim: threads, or tasks carrying it */
bool parked_owes_nothing = true;  /* see owes_nothing() */
byte closed_count[LIFETIMES + 2];
byte lifetimes;          /* connections opened in the slot */
bool stop;               /* Stop() called */
bool stopped;            /* Wait() finished */
bool early_stop;         /* chosen at start: Stop at any time, or after the peer */
bool peer_done;
byte workers_exited;

/* A claim is taken by a thread that will act on it (TryClaim by Dispatch
 * or by a Request whose task is accepted, Allocate, an expiry's CAS,
 * Wait's force claim): no one else may hold it. A Request's claim whose
 * task is refused (stopping) is never acted on; Wait takes it over. */
inline acquired() {
  owners++;
  assert(owners == 1)                   /* exclusive ownership */
}

/* A parked connection that no thread owns owes nothing: no kPending, no
 * request, no queued output. Whatever reaches it takes it over (TryClaim)
 * and Park refuses while anything is pending, so only input the kernel
 * holds waits for the bound. (Checked where parked, owners or the owed
 * work change.) */
inline owes_nothing() {
  parked_owes_nothing = (!parked || owners > 0 || !(pending || REQUESTS || out_pending));
  assert(parked_owes_nothing)
}

inline lock() { d_step { !mu -> mu = true } }
inline unlock() { mu = false }

inline cv_wait() {
  cv_waiters++;
  mu = false;
  d_step { (cv_tokens > 0 && !mu) -> cv_tokens--; cv_waiters--; mu = true }
}

/* Scheduler::Next: the seat stops running; wait for the role; take it with
 * a bounded wait while another thread runs (it may queue work or park a
 * connection) or while connections are parked (their expiry). */
inline become_leader(ok, seat) {
  lock();
#ifndef NO_PARK
  if :: seat -> running--; seat = false :: else -> skip fi;
#endif
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
#if defined(NO_PARK)
#elif !defined(MUTANT_NO_PARK_BOUND)
       ; bounded = (running > 0 || np > 0)
#else
       ; bounded = (running > 0)      /* the parked list does not bound the wait */
#endif
  fi;
  unlock()
}

/* Expiry (RescueDue / Next, under mu): takes the oldest parked entry; one
 * CAS claims the connection if its generation matches and kParked is still
 * set (no takeover won). A stale or taken-over entry is dropped. The
 * claim goes with a re-read item (Serve); here the expiring worker serves
 * it itself. An expiry when a worker takes the role is the same step. */
inline take_expired(ev, mygen) {
  d_step {
    if
    :: np > 0 ->
         mygen = plist[0]; plist[0] = plist[1]; plist[1] = plist[2]; plist[2] = 0; np--;
         if
         :: (gen == mygen && live && parked) -> parked = false; acquired()   /* ours */
         :: else -> ev = 0                                        /* takeover won, or reused */
         fi
    :: else -> ev = 0
    fi
  }
}

/* Handoff (or RescueDue for an expiry): the role is given up, the seat
 * runs until its next Next. */
inline promote(seat, ev, mygen) {
  lock();
#ifndef NO_PARK
  if :: ev == EV_EXPIRE -> take_expired(ev, mygen) :: else -> skip fi;
#endif
#ifndef MUTANT_KEEP_ROLE
  leader = false;
#endif
#ifndef NO_PARK
  bounded = false;
  if :: !seat -> running++; seat = true :: else -> skip fi;
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
  d_step {
    closed_count[gen]++;
    assert(closed_count[gen] == 1);     /* closed exactly once */
    registered = false; armed = false; ready = false; eof = false;
    out_pending = false; known_armed = false; known_conn = false;
#ifdef CONNECT
    connecting = false; opened = false; writable = false;
    timer_armed = false; timer_due = false;   /* Teardown cancels the timer */
#endif
    gen++; live = false; claimed = false; pending = false; close_req = false;
    parked = false;                          /* Free: new generation, no flags */
    owners--
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
       d_step {
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

/* Records the parked connection in the scheduler's parked list (under mu). */
inline record_parked(mygen) {
  lock();
  assert(np < PCAP);
  plist[np] = mygen; np++;
  unlock()
}

/*
 * Park: in place of Rearm + Release. One CAS: kParked if neither kPending
 * nor a request is set; else kPending is cleared and the owner serves again
 * (again = true), keeping the claim. On success the owner records the entry
 * and forgets the connection (again = false).
 */
inline park(mygen, again, got) {
#ifdef MUTANT_LIST_BEFORE_PARK
  record_parked(mygen);                  /* recorded before the CAS */
#endif
  d_step {
#ifndef MUTANT_PARK_IGNORES_PENDING
    if
    :: (pending || REQUESTS) -> pending = false; again = true
    :: else -> parked = true; again = false; owners--
    fi;
    got = false;
#else
    parked = true; again = false;        /* what is pending stays in the word */
    owners--; got = false;
#endif
    owes_nothing()
  };
#ifndef MUTANT_LIST_BEFORE_PARK
  if :: !again -> record_parked(mygen) :: else -> skip fi
#endif
}

/* A read that consumed data (not the EOF): the round read input. */
#ifndef NO_PARK
#define READ_DATA d_step { ready = false; got = true }
#else
#define READ_DATA ready = false
#endif

/*
 * Service: the owner's loop (ConnectionIo::Serve / ServeRound / Rearm /
 * Release; what follows a round is Decide, lib/internal/round_policy.cc).
 * `mygen` is the generation the caller claimed. `reread` allows one re-read
 * round (RoundOutcome::kReread) before re-arming; `got` is set by a round
 * that read input (not the EOF), after which the owner may park
 * (RoundOutcome::kPark) instead of re-arming, if it does not believe the fd
 * armed.
 */
inline service(mygen, again, closing, reread, got) {
  reread = true;
  do
  :: true ->
     d_step {
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
               if :: eof -> closing = true :: else -> READ_DATA fi
          :: else -> skip
          fi;
          out_pending = false             /* flush */
     fi;
#else
     if
     :: ready ->                          /* read: data or EOF */
          if :: eof -> closing = true :: else -> READ_DATA fi
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
     :: reread -> d_step { reread = false; again = true; got = false }  /* re-read, still claimed */
#ifndef NO_PARK
     :: (got && !known_armed) -> park(mygen, again, got)
#endif
     :: true ->
#ifndef MUTANT_REARM_AFTER_RELEASE
        rearm(mygen);
#endif
        d_step {
#ifndef MUTANT_IGNORE_PENDING
          if
          :: pending -> pending = false; again = true; got = false;
#ifndef MUTANT_KEEP_ARMED_ON_PENDING
               known_armed = false    /* a busy event may have disarmed it */
#else
               skip
#endif
          :: else -> claimed = false; again = false; owners--; got = false
          fi
#else
          pending = false; claimed = false; again = false; owners--; got = false
#endif
        };
#ifdef MUTANT_REARM_AFTER_RELEASE
        rearm(mygen);
#endif
     fi;
     if :: again -> skip :: else -> break fi
  od
}

inline run_tasks(n, mygen, again, closing, reread, got) {
  d_step { n = tasks; tasks = 0 };
  do
  :: n > 0 -> n--; mygen = gen; service(mygen, again, closing, reread, got)
  :: else -> break
  od
}

/* TryClaim for an event or a request (the CAS): stale, busy (kPending set),
 * or claimed; a parked connection is taken over (kParked cleared, kClaimed
 * kept). `ok` is set if the caller now owns it. */
inline try_claim(tgen, ok) {
  if
  :: (gen != tgen || !live) -> ok = false                   /* stale */
  :: else ->
       if
       :: (claimed && !parked) -> pending = true; ok = false   /* busy */
       :: else ->
            claimed = true; ok = true;                      /* claimed or taken over */
#ifndef MUTANT_TAKEOVER_KEEPS_PARKED
            parked = false
#else
            skip
#endif
       fi
  fi
}

proctype Worker() {
  bool ok, again, closing, reread, got, seat;
  byte ev, evgen, mygen, n;
  do
  :: become_leader(ok, seat);
     if :: !ok -> break :: else -> skip fi;
     d_step { in_wait++; assert(in_wait == 1) };   /* one thread in epoll_wait */
end_wait:
     do
#ifdef CONNECT
     :: atomic { (registered && armed && ((!connecting && ready) || (connecting && writable))) ->
                   armed = false; ev = EV_CONN; evgen = reg_gen; in_wait--; break }
     :: atomic { timer_armed -> timer_armed = false; ev = EV_TIMER; evgen = timer_gen; in_wait--; break }
#else
     :: atomic { (registered && armed && ready) ->
                   armed = false; ev = EV_CONN; evgen = reg_gen; in_wait--; break }
#endif
     :: atomic { (wake_armed && wake_count > 0) -> wake_armed = false; ev = EV_WAKE; in_wait--; break }
#ifndef MUTANT_NO_PARK_EXPIRY
     /* the bounded wait times out and the oldest entry has expired */
     :: atomic { (bounded && np > 0) -> ev = EV_EXPIRE; in_wait--; break }
#endif
     /* RescueDue: a bounded wait timed out, or a poll between passes
      * (timeout 0) found nothing, with nothing queued and nothing running;
      * with nothing parked the next wait has no bound, with entries parked
      * they are taken back first (the expiry above). (Timeouts that change
      * nothing are not modelled.) */
#if defined(NO_PARK)
#elif !defined(MUTANT_NO_PARK_BOUND) && !defined(MUTANT_POLL_IGNORES_PARKED)
     :: atomic { (bounded && running == 0 && np == 0 && !mu) -> bounded = false }
#else
     :: atomic { (bounded && running == 0 && !mu) -> bounded = false }
#endif
     od;
     promote(seat, ev, mygen);
     if
     :: ev == EV_CONN ->
          /* Dispatch: TryClaim(evgen) */
          d_step {
#ifndef MUTANT_NO_GENERATION_CHECK
            try_claim(evgen, ok);
#else
            try_claim(gen, ok);      /* the generation is not compared */
#endif
            if :: !ok -> ev = 0; ok = true :: else -> acquired() fi;
            owes_nothing()
          };
          if
          :: ev == EV_CONN ->
               assert(evgen == gen);   /* the event reached its own connection */
#ifndef MUTANT_KEEP_ARMED_ON_DISPATCH
               known_armed = false;    /* delivering it disarmed the fd */
#endif
               mygen = gen;
               service(mygen, again, closing, reread, got)
          :: else -> skip
          fi
     :: ev == EV_EXPIRE ->
          /* the re-read item queued by the expiry: Serve (read) */
          service(mygen, again, closing, reread, got)
#ifdef CONNECT
     :: ev == EV_TIMER ->
          /* The deadline's callback: Request(id, kTimerDue). */
#ifndef MUTANT_TIMER_NO_CLAIM
          d_step {
            if
            :: (gen != evgen || !live) -> ev = 0                      /* stale */
            :: else ->
                 timer_due = true;
                 try_claim(evgen, ok);
                 if :: !ok -> ev = 0; ok = true :: else -> acquired() fi
            fi;
            owes_nothing()
          };
#else
          /* serves without claiming: runs beside the owner */
          atomic { if :: (gen != evgen || !live) -> ev = 0 :: else -> timer_due = true fi };
#endif
          if
          :: ev == EV_TIMER -> mygen = evgen; service(mygen, again, closing, reread, got)
          :: else -> skip
          fi
#endif
     :: ev == EV_WAKE ->
          wake_count = 0;                     /* read(eventfd) */
          run_tasks(n, mygen, again, closing, reread, got);
#ifndef MUTANT_SWALLOW_STOP
          if :: stop -> wake_count++ :: else -> skip fi;   /* keep Stop visible */
#endif
          wake_armed = true
     :: else -> skip                          /* an expiry found its entry stale */
     fi
  od;
  run_tasks(n, mygen, again, closing, reread, got);    /* tasks accepted before Stop */
  workers_exited++
}

/* Accepts: opens a connection in the slot (claimed from birth), registers
 * it and serves it like OpenConnection does. It runs on a worker that took
 * the listener's event (running_ counts it; a leader waiting meanwhile took
 * the role after that event, with a bounded wait). */
proctype Acceptor() {
  bool again, closing, reread, got;
  byte mygen;
  do
  :: d_step {
       (!live && lifetimes < LIFETIMES && !stop && !mu) ->
         live = true; claimed = true; lifetimes++; mygen = gen; acquired();
         registered = true;
#ifndef NO_PARK
         running++; bounded = bounded || leader;
#endif
#ifdef CONNECT
         if
         :: lifetimes == 1 ->              /* Connect: kConnecting + deadline */
              connecting = true; timer_armed = true; timer_gen = gen
         :: else -> opened = true
         fi
#endif
     };
     service(mygen, again, closing, reread, got)
#ifndef NO_PARK
     ; lock(); running--; unlock()
#endif
  :: (lifetimes == LIFETIMES || stop) -> break
  od;
  workers_exited++    /* accepting runs on a worker: Wait() joins it too */
}

/* The client: sends MSGS messages (one at a time: `ready` is level), then
 * hangs up; follows each new connection in the slot. */
proctype Peer() {
  byte sent, peer_gen;
  do
  :: d_step { (live && gen != peer_gen) -> peer_gen = gen; sent = 0 }
#ifdef CONNECT
  :: d_step { (live && connecting && !writable) -> writable = true }  /* connect completes */
#endif
  :: d_step { (live && gen == peer_gen && CONNECTED &&
                !ready && !eof && sent < MSGS) ->
                ready = true; sent++ }
  :: d_step { (live && gen == peer_gen && CONNECTED &&
                !ready && !eof && sent == MSGS) ->
                ready = true; eof = true }
  :: atomic { (lifetimes == LIFETIMES && !live) -> peer_done = true; break }
  :: atomic { stopped -> break }
  od
}

/* Kick: claim for the foreign thread and hand the claim to a worker, or
 * leave the work pending for the owner (ForeignRequests::Request). A parked
 * connection is taken over (TryClaim), as an unclaimed one is claimed. */
inline kick(tgen, is_close, ok) {
  d_step {
    if
    :: (gen != tgen || !live) -> skip                       /* stale id */
    :: else ->
         if :: is_close -> close_req = true :: else -> out_pending = true fi;
#ifndef MUTANT_FOREIGN_MOD
         try_claim(tgen, ok);
         if
         :: (ok && !stop) -> acquired(); tasks++; wake_count++   /* a Serve task */
         :: else -> skip        /* busy, or the task refused: Wait takes the claim */
         fi;
         ok = false
#else
         /* re-arm directly instead of claiming */
         if :: registered -> armed = true; ready = true :: else -> skip fi
#endif
    fi;
    owes_nothing()
  }
}

proctype Foreign() {
  byte target;
  bool ok;
  d_step { (live || lifetimes == LIFETIMES || stopped) -> target = gen };
  kick(target, false, ok);   /* Reactor::Write(id) */
  kick(target, true, ok)     /* Reactor::Close(id) */
}

proctype Stopper() {
  byte g;
  if :: early_stop -> skip :: else -> peer_done fi;
  stop = true;
  gate_shutdown();
  wake_count++;
  (workers_exited == NWORKERS + 1);
  /* Wait(): CloseAllAfterJoin — every worker has exited; a parked slot is
   * force-claimed and torn down like any other */
#ifdef CONNECT
  timer_armed = false;                   /* timers_.Clear() */
#endif
  /* fetch_or kClaimed leaves kParked set: a foreign Write / Close may still
   * take a parked slot over while Wait tears it down (its Serve task is
   * refused, Post after Stop, so it never acts; docs/model.md) */
  if :: live -> d_step { claimed = true; acquired() }; close_now() :: else -> skip fi;
  stopped = true
}

/* When nothing can move any more, everything must be finished. */
proctype Monitor() {
  byte g;
  bool parked_input_read;
  atomic {
    timeout ->
      /* input that reached a parked connection was read (expiry, takeover) */
      parked_input_read = !(parked && ready);
      assert(parked_input_read);
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
    run Acceptor(); run Peer();
#ifndef NO_FOREIGN
    run Foreign();
#endif
    run Stopper(); run Monitor()
  }
}
