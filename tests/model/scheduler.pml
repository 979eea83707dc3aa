/*
 * Promela model of baton's scheduler (lib/internal/scheduler.cc and the
 * worker loop in lib/internal/event_loop.cc): leader/followers over one
 * epoll with a shared ready queue, re-reads queued at the back,
 * and the leader's bounded wait that rescues queued work.
 * docs/model.md maps every variable here to the code.
 *
 * The question it answers: can work a thread has taken (an event from its
 * epoll_wait batch, or a connection kept claimed for a re-read) wait behind
 * a handler that blocks while another thread is free? Connections S0 and S1
 * are "slow": the handler of their second message blocks until the fast
 * connection F has been served completely. If any of F's work is stranded
 * behind a blocked handler while a free thread sleeps or waits in
 * epoll_wait for nothing, the system stops with F unfinished and the
 * end-state check fails.
 *
 * Mutants (-DMUTANT_...): STRAND_BATCH (the leader runs its whole batch
 * itself, the design before the ready queue), NO_WAKE (queued work wakes
 * nobody), NO_RESCUE (the leader always waits without a bound).
 */

#ifndef NWORKERS
#define NWORKERS 3
#endif
/* Connections: 0 = F (fast), then one slow one per worker beyond the
 * first (with every worker blocked, no free thread remains to promise). */
#define NC NWORKERS
#define F 0
#define MSGS 2        /* messages each client sends, one at a time */
#if NC > 2
#define READY_ANY ((armed[0] && has_data[0]) || (armed[1] && has_data[1]) || (armed[2] && has_data[2]))
#define ALL_SERVED (served[0] == MSGS && served[1] == MSGS && served[2] == MSGS)
#else
#define READY_ANY ((armed[0] && has_data[0]) || (armed[1] && has_data[1]))
#define ALL_SERVED (served[0] == MSGS && served[1] == MSGS)
#endif
#define QCAP 8

/* ---- Scheduler (mu_, leader_, sleeping_, wakeups_, running_, ready_) ---- */
bool leader;
byte sleeping;
byte wakeups;
byte running;
byte cv_tokens;        /* signals sent (cv_.Signal) not yet consumed */
chan ready_q = [QCAP] of { byte, bool };   /* connection, is a re-read */

/* ---- epoll and the sockets ------------------------------------------------ */
bool armed[NC];        /* ONESHOT armed */
bool has_data[NC];     /* a message is waiting (level-triggered) */

/* ---- clients and bookkeeping -------------------------------------------- */
byte sent[NC];
byte served[NC];
byte in_handler[NC];
byte in_wait;          /* threads inside epoll_wait */

/* Every critical section of Scheduler::mu_ is one atomic step here: all
 * the scheduler's state is touched only under that mutex. */

/* Signals up to n sleepers not yet signalled (WakeLocked). */
inline wake(n) {
  k = 0;
  do
  :: (k < n && sleeping > wakeups) ->
       wakeups++;
       cv_tokens++;
       k++
  :: else -> k = 0; break
  od
}

/*
 * One handler run for connection c (Serve): a re-read that finds nothing
 * re-arms; otherwise the message is served (the slow connections' second
 * message blocks until F is done), then the connection is queued for a
 * re-read (an event) or re-armed (a re-read: one round).
 */
inline serve(c, rr) {
  atomic { in_handler[c]++; assert(in_handler[c] == 1) };
  if
  :: has_data[c] ->
       has_data[c] = false;
       served[c]++;
       if
       :: (c != F && served[c] == MSGS) -> (served[F] == MSGS)  /* blocks */
       :: else -> skip
       fi;
       in_handler[c]--;
       if
       :: !rr ->
            atomic {
              ready_q!c,true;
#ifndef MUTANT_NO_WAKE
              wake(1)
#endif
            }
       :: else -> armed[c] = true
       fi
  :: else ->
       in_handler[c]--;
       armed[c] = true
  fi
}

proctype Worker() {
  byte c, k, kept, mask, i;
  bool rr, me_running, finite, got, rescued;
  do
  :: /* Scheduler::Next */
     atomic {
       if :: me_running -> me_running = false; running-- :: else -> skip fi;
       do
       :: nempty(ready_q) ->
            ready_q?c,rr; me_running = true; running++; got = false; break
       :: (empty(ready_q) && !leader) ->
            leader = true; got = true;
#ifndef MUTANT_NO_RESCUE
            finite = (running > 0);
#else
            finite = false;
#endif
            break
       :: (empty(ready_q) && leader) ->
            sleeping++;
end_sleep:  (cv_tokens > 0);   /* the mutex is released while asleep */
            cv_tokens--;
            sleeping--;
            if :: wakeups > 0 -> wakeups-- :: else -> skip fi
       od
     };
     if
     :: !got -> serve(c, rr)
     :: got ->
          /* The leader: epoll_wait, or a bounded wait that may time out.
           * A timeout with nothing queued changes nothing (RescueDue keeps
           * the role), so it is modelled only when work is queued. */
          rescued = false;
          atomic { in_wait++; assert(in_wait == 1) };
end_wait:
          atomic {
            if
            :: READY_ANY ->
                 mask = 0; i = 0;
                 do
                 :: i < NC ->
                      if
                      :: (armed[i] && has_data[i]) -> armed[i] = false; mask = mask | (1 << i)
                      :: else -> skip
                      fi;
                      i++
                 :: else -> i = 0; break
                 od
            :: (finite && nempty(ready_q)) -> rescued = true
            fi;
            in_wait--
          };
          if
          :: rescued ->
               /* RescueDue: give the role up, take the queued work */
               atomic { leader = false; wake(1) }
          :: else ->
               /* Keep one event (any: epoll's order), hand the rest over. */
               if
               :: (mask & 1) -> kept = 0
               :: (mask & 2) -> kept = 1
#if NC > 2
               :: (mask & 4) -> kept = 2
#endif
               fi;
               mask = mask & ~(1 << kept);
               atomic {
#ifndef MUTANT_STRAND_BATCH
               i = 0; k = 0;
               do
               :: i < NC ->
                    if :: (mask & (1 << i)) -> ready_q!i,false; k++ :: else -> skip fi;
                    i++
               :: else -> i = 0; break
               od;
               mask = 0;
#else
               k = 0;
#endif
               leader = false;
               if :: !me_running -> me_running = true; running++ :: else -> skip fi;
#ifndef MUTANT_NO_WAKE
               c = k + 1;
               wake(c);
#endif
               skip
               };
               serve(kept, false);
               /* MUTANT_STRAND_BATCH: the rest of the batch, on this thread */
               i = 0;
               do
               :: i < NC ->
                    if :: (mask & (1 << i)) -> serve(i, false) :: else -> skip fi;
                    i++
               :: else -> i = 0; break
               od;
               mask = 0; kept = 0
          fi
     fi
  od
}

/* A client: sends its messages one at a time, each once the previous one
 * was served (closed loop). */
proctype Client(byte c) {
  do
  :: atomic { (!has_data[c] && sent[c] < MSGS && served[c] == sent[c]) ->
                has_data[c] = true; sent[c]++ }
  :: (sent[c] == MSGS) -> break
  od
}

/* When nothing can move any more, every message must have been served. */
proctype Monitor() {
  atomic {
    timeout ->
      assert(ALL_SERVED)
  }
}

init {
  atomic {
    armed[0] = true; armed[1] = true;
    run Worker(); run Worker();
    run Client(0); run Client(1);
#if NWORKERS >= 3
    armed[2] = true;
    run Worker();
    run Client(2);
#endif
    run Monitor()
  }
}
