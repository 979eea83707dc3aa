// The after-round policy (lib/internal/round_policy.h) as the pure function
// it is: facts in, an outcome and the adapted state out. No sockets, no
// threads; the reactor tests cover Serve applying it.
#include "lib/internal/round_policy.h"

#include <sys/epoll.h>

#include <climits>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/internal/scheduler.h"

namespace baton::internal {
namespace {

// A round after which the connection may stay claimed: it read input on a
// reactor thread, is open, in epoll, disarmed, reading, with nothing queued.
RoundFacts Eligible() {
  RoundFacts facts;
  facts.bytes_read = 100;
  facts.wants_input = true;
  facts.open = true;
  facts.registered = true;
  facts.on_reactor_thread = true;
  facts.max_reread_rounds = INT_MAX;
  facts.park_enabled = true;
  return facts;
}

const char* OutcomeName(RoundOutcome outcome) {
  switch (outcome) {
    case RoundOutcome::kYield:
      return "kYield";
    case RoundOutcome::kPark:
      return "kPark";
    case RoundOutcome::kReadLater:
      return "kReadLater";
    case RoundOutcome::kReread:
      return "kReread";
    case RoundOutcome::kRearm:
      return "kRearm";
  }
  return "?";
}

struct DecideCase {
  std::string name;
  std::function<void(RoundFacts*, RoundPlan*, RoundPolicyState*)> given;
  RoundOutcome outcome;
  int queued_round;  // RoundDecision::reread_round
  // The state and plan afterwards, from those given.
  std::function<void(RoundPolicyState*, RoundPlan*)> then;
  bool counted = false;
  bool hit = false;
};

void Nothing(RoundPolicyState*, RoundPlan*) {}

std::vector<DecideCase> DecideCases() {
  using F = RoundFacts;
  using P = RoundPlan;
  using S = RoundPolicyState;
  return {
      // Yield.
      {"InputLeftYields", [](F* f, P*, S*) { f->input_left = true; },
       RoundOutcome::kYield, 0, Nothing},
      {"InputLeftYieldsEvenOffReactorThread",
       [](F* f, P*, S*) {
         f->input_left = true;
         f->on_reactor_thread = false;
       },
       RoundOutcome::kYield, 0, Nothing},
      {"InputLeftButNoLongerWantedRearms",
       [](F* f, P*, S*) {
         f->input_left = true;
         f->wants_input = false;
       },
       RoundOutcome::kRearm, 0, Nothing},
      // Re-read.
      {"InputReadRereads", [](F*, P*, S*) {}, RoundOutcome::kReread, 1,
       Nothing},
      {"NextRereadRound", [](F*, P* p, S*) { p->reread_round = 4; },
       RoundOutcome::kReread, 5, Nothing},
      {"RereadBoundReachedRearms",
       [](F* f, P* p, S*) {
         f->max_reread_rounds = 2;
         p->reread_round = 2;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"RereadsOffRearm", [](F* f, P*, S*) { f->max_reread_rounds = 0; },
       RoundOutcome::kRearm, 0, Nothing},
      {"IdleThreadRearms", [](F* f, P*, S*) { f->has_idle_thread = true; },
       RoundOutcome::kRearm, 0, Nothing},
      {"NothingReadRearms", [](F* f, P*, S*) { f->bytes_read = 0; },
       RoundOutcome::kRearm, 0, Nothing},
      {"NothingReadWithQueuedWorkRearms",
       [](F* f, P*, S*) {
         f->bytes_read = 0;
         f->has_queued_work = true;
       },
       RoundOutcome::kRearm, 0, Nothing},
      // The shared eligibility, term by term (for a re-read; the park
      // cases below check it for parking).
      {"OffReactorThreadRearms",
       [](F* f, P*, S*) { f->on_reactor_thread = false; }, RoundOutcome::kRearm,
       0, Nothing},
      {"UnregisteredRearms", [](F* f, P*, S*) { f->registered = false; },
       RoundOutcome::kRearm, 0, Nothing},
      {"NotOpenRearms", [](F* f, P*, S*) { f->open = false; },
       RoundOutcome::kRearm, 0, Nothing},
      {"NotReadingRearms", [](F* f, P*, S*) { f->wants_input = false; },
       RoundOutcome::kRearm, 0, Nothing},
      {"WriteErrorRearms", [](F* f, P*, S*) { f->write_error = true; },
       RoundOutcome::kRearm, 0, Nothing},
      {"OutputQueuedRearms", [](F* f, P*, S*) { f->output_queued = true; },
       RoundOutcome::kRearm, 0, Nothing},
      {"ArmedStillRereads", [](F* f, P*, S*) { f->armed = true; },
       RoundOutcome::kReread, 1, Nothing},
      // Re-read hits and misses.
      {"HitRaisesConfidenceAndResetsBackoff",
       [](F*, P* p, S* s) {
         p->reread_round = 1;
         p->reread = true;
         s->reread_confidence = 1;
         s->reread_backoff = 32;
         s->reread_skips = 5;
       },
       RoundOutcome::kReread, 2,
       [](S* s, P* p) {
         s->reread_confidence = 2;
         s->reread_backoff = kMinRereadBackoff;
         p->reread = false;
       },
       true, true},
      {"HitKeepsConfidenceAtMost3",
       [](F*, P* p, S* s) {
         p->reread_round = 1;
         p->reread = true;
         s->reread_confidence = 3;
       },
       RoundOutcome::kReread, 2, [](S*, P* p) { p->reread = false; }, true,
       true},
      {"MissZeroesConfidenceAndSkips",
       [](F* f, P* p, S* s) {
         f->bytes_read = 0;
         p->reread_round = 3;
         p->reread = true;
         s->reread_confidence = 3;
         s->reread_skips = 5;
         s->reread_backoff = 16;
       },
       RoundOutcome::kRearm, 0,
       [](S* s, P* p) {
         s->reread_confidence = 0;
         s->reread_skips = 0;
         p->reread = false;
       },
       true, false},
      {"NotARereadCountsNothing",
       [](F* f, P* p, S*) {
         f->bytes_read = 0;
         p->reread_round = 2;  // served again after a lost release
       },
       RoundOutcome::kRearm, 0, Nothing},
      // After a miss: skips count up, then the back-off doubles.
      {"NoConfidenceSkipsTheReread",
       [](F*, P*, S* s) {
         s->reread_confidence = 0;
         s->reread_skips = 2;
       },
       RoundOutcome::kRearm, 0, [](S* s, P*) { s->reread_skips = 3; }},
      {"LastSkipRestoresConfidenceAndDoublesBackoff",
       [](F*, P*, S* s) {
         s->reread_confidence = 0;
         s->reread_skips = 7;
         s->reread_backoff = 8;
       },
       RoundOutcome::kRearm, 0,
       [](S* s, P*) {
         s->reread_skips = 8;
         s->reread_confidence = 1;
         s->reread_backoff = 16;
       }},
      {"BackoffStopsAt64",
       [](F*, P*, S* s) {
         s->reread_confidence = 0;
         s->reread_skips = 63;
         s->reread_backoff = 64;
       },
       RoundOutcome::kRearm, 0,
       [](S* s, P*) {
         s->reread_skips = 64;
         s->reread_confidence = 1;
       }},
      {"NoSkipCountedWhenNotEligible",
       [](F* f, P*, S* s) {
         f->has_idle_thread = true;
         s->reread_confidence = 0;
         s->reread_skips = 2;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoSkipCountedWithinTheBound",
       [](F* f, P* p, S* s) {
         f->max_reread_rounds = 1;
         p->reread_round = 1;
         s->reread_confidence = 0;
         s->reread_skips = 2;
       },
       RoundOutcome::kRearm, 0, Nothing},
      // Park.
      {"RelayParks", [](F* f, P*, S*) { f->relayed = true; },
       RoundOutcome::kPark, 0, [](S* s, P*) { s->parked = true; }},
      {"ParkKeepsReadLater",
       [](F* f, P* p, S*) {
         f->relayed = true;
         p->read_later = true;
       },
       RoundOutcome::kPark, 0,
       [](S* s, P* p) {
         s->parked = true;
         p->read_later = true;
       }},
      {"RelayWithNothingReadRearms",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->bytes_read = 0;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"ParkingOffRereads",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->park_enabled = false;
       },
       RoundOutcome::kReread, 1, Nothing},
      {"ArmedNeverParks",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->armed = true;
       },
       RoundOutcome::kReread, 1, Nothing},
      {"NoParkOffReactorThread",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->on_reactor_thread = false;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoParkWithOutputQueued",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->output_queued = true;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoParkWithWriteError",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->write_error = true;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoParkUnregistered",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->registered = false;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoParkNotOpen",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->open = false;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"NoParkNotReading",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->wants_input = false;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"ParkWithIdleThread",
       [](F* f, P*, S*) {
         f->relayed = true;
         f->has_idle_thread = true;
       },
       RoundOutcome::kPark, 0, [](S* s, P*) { s->parked = true; }},
      {"ParkSkipsCountDown",
       [](F* f, P*, S* s) {
         f->relayed = true;
         s->park_skips = 3;
       },
       RoundOutcome::kReread, 1, [](S* s, P*) { s->park_skips = 2; }},
      {"LastParkSkip",
       [](F* f, P*, S* s) {
         f->relayed = true;
         f->has_idle_thread = true;
         s->park_skips = 1;
       },
       RoundOutcome::kRearm, 0, [](S* s, P*) { s->park_skips = 0; }},
      {"ParkSkipsKeptWhenNotEligible",
       [](F* f, P*, S* s) {
         f->relayed = true;
         f->armed = true;
         s->park_skips = 3;
       },
       RoundOutcome::kReread, 1, Nothing},
      {"ParkAndRereadBothSkip",
       [](F* f, P*, S* s) {
         f->relayed = true;
         s->park_skips = 3;
         s->reread_confidence = 0;
       },
       RoundOutcome::kRearm, 0,
       [](S* s, P*) {
         s->park_skips = 2;
         s->reread_skips = 1;
       }},
      // Read later: woken from a park by a request.
      {"WokenWithNothingReadReadsLater",
       [](F* f, P* p, S*) {
         f->bytes_read = 0;
         f->has_queued_work = true;
         p->read_later = true;
       },
       RoundOutcome::kReadLater, 1, [](S*, P* p) { p->read_later = true; }},
      {"WokenWithNoOtherWorkRearms",
       [](F* f, P* p, S*) {
         f->bytes_read = 0;
         p->read_later = true;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"WokenWithIdleThreadRearms",
       [](F* f, P* p, S*) {
         f->bytes_read = 0;
         f->has_queued_work = true;
         f->has_idle_thread = true;
         p->read_later = true;
       },
       RoundOutcome::kRearm, 0, Nothing},
      {"WokenWithoutConfidenceCountsASkip",
       [](F* f, P* p, S* s) {
         f->bytes_read = 0;
         f->has_queued_work = true;
         p->read_later = true;
         s->reread_confidence = 0;
       },
       RoundOutcome::kRearm, 0, [](S* s, P*) { s->reread_skips = 1; }},
      {"WokenWithInputReadRereadsNow",
       [](F* f, P* p, S*) {
         f->has_queued_work = true;
         p->read_later = true;
       },
       RoundOutcome::kReread, 1, Nothing},
      {"ReadLaterIgnoresTheBound",
       [](F* f, P* p, S*) {
         f->bytes_read = 0;
         f->has_queued_work = true;
         f->max_reread_rounds = 1;
         p->reread_round = 1;
         p->read_later = true;
       },
       RoundOutcome::kReadLater, 1, [](S*, P* p) { p->read_later = true; }},
  };
}

class DecideTest : public testing::TestWithParam<DecideCase> {};

TEST_P(DecideTest, OutcomeAndAdaptedState) {
  const DecideCase& c = GetParam();
  RoundFacts facts = Eligible();
  RoundPlan plan;
  RoundPolicyState state;
  c.given(&facts, &plan, &state);
  RoundPlan want_plan = plan;
  RoundPolicyState want_state = state;
  // Whatever it was, the plan's read_later is spent unless the outcome
  // left the claim's loop before that check (yield, park, read later).
  want_plan.read_later = false;
  want_plan.reread = false;
  c.then(&want_state, &want_plan);

  const RoundDecision decision = Decide(facts, &plan, &state);
  EXPECT_EQ(OutcomeName(decision.outcome), std::string(OutcomeName(c.outcome)));
  EXPECT_EQ(decision.reread_round, c.queued_round);
  EXPECT_EQ(decision.reread_counted, c.counted);
  EXPECT_EQ(decision.reread_hit, c.hit);
  EXPECT_EQ(state.reread_confidence, want_state.reread_confidence);
  EXPECT_EQ(state.reread_skips, want_state.reread_skips);
  EXPECT_EQ(state.reread_backoff, want_state.reread_backoff);
  EXPECT_EQ(state.park_skips, want_state.park_skips);
  EXPECT_EQ(state.park_backoff, want_state.park_backoff);
  EXPECT_EQ(state.parked, want_state.parked);
  EXPECT_EQ(plan.revents, want_plan.revents);
  EXPECT_EQ(plan.reread_round, want_plan.reread_round);
  EXPECT_EQ(plan.reread, want_plan.reread);
  if (decision.outcome == RoundOutcome::kRearm ||
      decision.outcome == RoundOutcome::kReread) {
    EXPECT_FALSE(plan.read_later);
  } else {
    EXPECT_EQ(plan.read_later, want_plan.read_later);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, DecideTest, testing::ValuesIn(DecideCases()),
    [](const testing::TestParamInfo<DecideCase>& param_info) {
      return param_info.param.name;
    });

TEST(DecideTest, MissesBackOffDoublingTo64AndAHitResets) {
  RoundPolicyState state;
  RoundFacts facts = Eligible();
  // A re-read that misses, then re-arms until the skips run out, over and
  // over: each try comes after twice as many re-arms, up to 64.
  const int want_skips[] = {8, 16, 32, 64, 64, 64};
  for (int want : want_skips) {
    RoundPlan plan;
    plan.reread_round = 1;
    plan.reread = true;
    facts.bytes_read = 0;
    ASSERT_EQ(Decide(facts, &plan, &state).outcome, RoundOutcome::kRearm);
    EXPECT_EQ(state.reread_confidence, 0);
    facts.bytes_read = 100;
    int skipped = 0;
    for (; skipped < 1000; ++skipped) {
      plan = RoundPlan{};
      if (Decide(facts, &plan, &state).outcome != RoundOutcome::kRearm) break;
    }
    EXPECT_EQ(skipped, want);
  }
  EXPECT_EQ(state.reread_backoff, kMaxRereadBackoff);
  RoundPlan hit;
  hit.reread_round = 1;
  hit.reread = true;
  EXPECT_EQ(Decide(facts, &hit, &state).outcome, RoundOutcome::kReread);
  EXPECT_EQ(state.reread_backoff, kMinRereadBackoff);
  EXPECT_EQ(state.reread_confidence, 2);
}

TEST(ServeAgainTest, LooksAtEverythingAndKeepsTheRound) {
  RoundPlan plan;
  plan.revents = EPOLLIN;
  plan.reread_round = 3;
  plan.read_later = true;
  RoundPolicyState state;
  state.parked = true;  // a refused park
  ServeAgain(&plan, &state);
  EXPECT_EQ(plan.revents, static_cast<uint32_t>(EPOLLIN | EPOLLOUT));
  EXPECT_EQ(plan.reread_round, 3);
  EXPECT_FALSE(plan.reread);
  EXPECT_TRUE(plan.read_later);
  EXPECT_FALSE(state.parked);
}

struct PlanCase {
  std::string name;
  WorkKind kind;
  bool unparked;
  RoundPlan want;
};

class PlanServeTest : public testing::TestWithParam<PlanCase> {};

TEST_P(PlanServeTest, MapsKindToFirstRound) {
  const PlanCase& c = GetParam();
  const RoundPlan plan =
      PlanServe(c.kind, EPOLLIN | EPOLLRDHUP, /*reread_round=*/2, c.unparked);
  EXPECT_EQ(plan.revents, c.want.revents);
  EXPECT_EQ(plan.reread_round, c.want.reread_round);
  EXPECT_EQ(plan.reread, c.want.reread);
  EXPECT_EQ(plan.read_later, c.want.read_later);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, PlanServeTest,
    testing::Values(
        PlanCase{"Event",
                 WorkKind::kEvent,
                 false,
                 {EPOLLIN | EPOLLRDHUP, 0, false, false}},
        PlanCase{"Reread", WorkKind::kReread, false, {EPOLLIN, 2, true, false}},
        PlanCase{"Yield", WorkKind::kYield, false, {EPOLLIN, 0, false, false}},
        PlanCase{"Request", WorkKind::kRequest, false, {0, 0, false, false}},
        PlanCase{
            "RequestUnparked", WorkKind::kRequest, true, {0, 0, false, true}},
        PlanCase{"ParkExpired",
                 WorkKind::kParkExpired,
                 true,
                 {EPOLLIN, 1, true, false}},
        PlanCase{"ParkIdle", WorkKind::kParkIdle, true, {0, 0, false, false}}),
    [](const testing::TestParamInfo<PlanCase>& param_info) {
      return param_info.param.name;
    });

struct ParkEndCase {
  std::string name;
  bool parked;
  WorkKind kind;
  uint8_t backoff;
  ParkEnd want;
  uint8_t want_backoff;
  uint8_t want_skips;
};

class TakeOverParkTest : public testing::TestWithParam<ParkEndCase> {};

TEST_P(TakeOverParkTest, CountsAndAdaptsTheBackoff) {
  const ParkEndCase& c = GetParam();
  RoundPolicyState state;
  state.parked = c.parked;
  state.park_backoff = c.backoff;
  state.park_skips = 5;
  EXPECT_EQ(static_cast<int>(TakeOverPark(c.kind, &state)),
            static_cast<int>(c.want));
  EXPECT_FALSE(state.parked);
  EXPECT_EQ(state.park_backoff, c.want_backoff);
  EXPECT_EQ(state.park_skips, c.want_skips);
}

INSTANTIATE_TEST_SUITE_P(
    Ends, TakeOverParkTest,
    testing::Values(ParkEndCase{"NotParked", false, WorkKind::kParkExpired, 4,
                                ParkEnd::kNotParked, 4, 5},
                    ParkEndCase{"WokenResetsBackoff", true, WorkKind::kRequest,
                                16, ParkEnd::kWoken, 0, 5},
                    ParkEndCase{"FirstExpiry", true, WorkKind::kParkExpired, 0,
                                ParkEnd::kExpired, 1, 1},
                    ParkEndCase{"ExpiryDoubles", true, WorkKind::kParkExpired,
                                16, ParkEnd::kExpired, 32, 32},
                    ParkEndCase{"ExpiryStopsAt64", true, WorkKind::kParkExpired,
                                64, ParkEnd::kExpired, 64, 64},
                    ParkEndCase{"IdleDoubles", true, WorkKind::kParkIdle, 2,
                                ParkEnd::kIdle, 4, 4},
                    ParkEndCase{"IdleStopsAt64", true, WorkKind::kParkIdle, 32,
                                ParkEnd::kIdle, 64, 64}),
    [](const testing::TestParamInfo<ParkEndCase>& param_info) {
      return param_info.param.name;
    });

}  // namespace
}  // namespace baton::internal
