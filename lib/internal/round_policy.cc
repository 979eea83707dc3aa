#include "lib/internal/round_policy.h"

#include <sys/epoll.h>

#include <algorithm>

#include "lib/internal/scheduler.h"

namespace baton::internal {
namespace {

// Kept claimed off epoll (parked or queued for a re-read) is only for a
// connection served by a reactor thread, in epoll, open, reading, with
// nothing of its own to send and no send error.
bool MayStayClaimed(const RoundFacts& facts) {
  return facts.on_reactor_thread && facts.registered && facts.open &&
         facts.wants_input && !facts.write_error && !facts.output_queued;
}

bool MayPark(const RoundFacts& facts, RoundPolicyState* state) {
  // Only a connection known to be disarmed (an event or a re-read brought
  // it here, not a request while it was armed) may wait off epoll.
  if (!facts.park_enabled || facts.armed || !MayStayClaimed(facts)) {
    return false;
  }
  if (state->park_skips > 0) {
    --state->park_skips;
    return false;
  }
  return true;
}

bool MayReread(const RoundFacts& facts, RoundPolicyState* state) {
  // With a thread idle, the leader is waiting for the kernel: re-arming
  // costs no latency, and a queued re-read would only wake that thread to
  // read too early.
  if (facts.max_reread_rounds == 0 || facts.has_idle_thread ||
      !MayStayClaimed(facts)) {
    return false;
  }
  if (state->reread_confidence == 0) {
    // Its last re-read found nothing: re-arm at once for a while, then give
    // re-reading another chance (the peer's pace may have changed). A
    // connection whose peer never answers that fast (a proxy's reading
    // side) is tried ever more rarely.
    if (++state->reread_skips >= state->reread_backoff) {
      state->reread_confidence = 1;
      state->reread_backoff = static_cast<uint8_t>(
          std::min<int>(2 * state->reread_backoff, kMaxRereadBackoff));
    }
    return false;
  }
  return true;
}

}  // namespace

ParkEnd TakeOverPark(WorkKind kind, RoundPolicyState* state) {
  if (!state->parked) return ParkEnd::kNotParked;
  state->parked = false;
  if (kind != WorkKind::kParkExpired && kind != WorkKind::kParkIdle) {
    state->park_backoff = 0;
    return ParkEnd::kWoken;
  }
  // Its answer did not come as a Write in time (it may not be a relay's
  // side at all: a chat client talks on its own), or the reactor ran dry
  // first (a lightly loaded proxy, where parking saves nothing). Park it
  // ever more rarely.
  state->park_backoff = static_cast<uint8_t>(std::min<int>(
      state->park_backoff == 0 ? 1 : 2 * state->park_backoff, kMaxParkBackoff));
  state->park_skips = state->park_backoff;
  return kind == WorkKind::kParkIdle ? ParkEnd::kIdle : ParkEnd::kExpired;
}

RoundPlan PlanServe(WorkKind kind, uint32_t revents, int reread_round,
                    bool unparked) {
  RoundPlan plan;
  plan.revents = revents;
  plan.reread_round = reread_round;
  switch (kind) {
    case WorkKind::kEvent:
      plan.reread_round = 0;
      break;
    case WorkKind::kReread:
      plan.revents = EPOLLIN;
      break;
    case WorkKind::kYield:
      plan.revents = EPOLLIN;  // it yielded with input left (ReadInput)
      plan.reread_round = 0;
      break;
    case WorkKind::kRequest:
      // Nothing known to be readable. Woken by a request while parked (an
      // event never finds it parked, it is disarmed): its input follows
      // what is being sent now, so read it after the other ready work.
      plan.revents = 0;
      plan.reread_round = 0;
      plan.read_later = unparked;
      break;
    case WorkKind::kParkExpired:
      plan.revents = EPOLLIN;
      plan.reread_round = 1;  // read it as a re-read: a miss re-arms it
      break;
    case WorkKind::kParkIdle:
      // Every thread went idle: re-arm it, nothing to read first.
      plan.revents = 0;
      plan.reread_round = 0;
      break;
    case WorkKind::kHandshake:
      // A step a worker deferred: served for the readiness it carries.
      plan.reread_round = 0;
      break;
    case WorkKind::kPollMark:
      // Never returned by Scheduler::Next, so never here: nothing is known
      // to be readable.
      plan.revents = 0;
      plan.reread_round = 0;
      break;
  }
  plan.reread = plan.reread_round > 0;
  return plan;
}

RoundDecision Decide(const RoundFacts& facts, RoundPlan* plan,
                     RoundPolicyState* state) {
  RoundDecision decision;
  if (plan->reread) {
    plan->reread = false;
    decision.reread_counted = true;
    if (facts.bytes_read > 0) {
      decision.reread_hit = true;
      if (state->reread_confidence < kMaxRereadConfidence) {
        ++state->reread_confidence;
      }
      state->reread_backoff = kMinRereadBackoff;
    } else {
      state->reread_confidence = 0;
      state->reread_skips = 0;
    }
  }
  if (facts.input_left && facts.wants_input) {
    // Input is waiting, and so is other ready work: read on after that
    // work (the claim travels with the item, as for a re-read), so a bulk
    // sender takes turns with the others, and what it was sent moves on
    // (a proxy's peer flushes each chunk before the next is read).
    decision.outcome = RoundOutcome::kYield;
    return decision;
  }
  if (facts.bytes_read > 0 && facts.relayed && MayPark(facts, state)) {
    // It relayed what it read: its next input answers that, and comes with
    // a Write to it, which takes it over (Scheduler, "Parking").
    state->parked = true;
    decision.outcome = RoundOutcome::kPark;
    return decision;
  }
  if (plan->read_later && facts.bytes_read == 0 && facts.has_queued_work &&
      MayReread(facts, state)) {
    decision.outcome = RoundOutcome::kReadLater;
    decision.reread_round = 1;
    return decision;
  }
  plan->read_later = false;
  if (facts.bytes_read > 0 && plan->reread_round < facts.max_reread_rounds &&
      MayReread(facts, state)) {
    // Keep the claim: the connection goes to the back of the ready queue,
    // to be read again (by whichever thread is free) after the work queued
    // before it, and re-armed only if that read finds nothing.
    decision.outcome = RoundOutcome::kReread;
    decision.reread_round = plan->reread_round + 1;
    return decision;
  }
  decision.outcome = RoundOutcome::kRearm;
  return decision;
}

void ServeAgain(RoundPlan* plan, RoundPolicyState* state) {
  state->parked = false;
  plan->revents = EPOLLIN | EPOLLOUT;
}

}  // namespace baton::internal
