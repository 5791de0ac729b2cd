// Toxics on made-up times: each stage is given the clock, so these are exact.
#include "proxy/toxic.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "net/clock.h"
#include "proxy/link.h"

namespace millstone::proxy {
namespace toxic_test {

constexpr int64_t kMs = net::kNsPerMs;
constexpr int64_t kT0 = 1'000 * kMs;  // an arbitrary start

ToxicSpec spec_of(ToxicType type, ToxicAttributes attributes, double toxicity = 1.0) {
  ToxicSpec spec;
  spec.name = toxic_type_name(type);
  spec.type = type;
  spec.toxicity = toxicity;
  spec.attributes = attributes;
  return spec;
}

struct Out {
  int64_t at;
  Piece piece;
};

// Runs a stage to completion from `now`, collecting each piece with the time
// it became ready.
std::vector<Out> drain(ToxicStage& stage, int64_t until = kNever - 1) {
  std::vector<Out> out;
  for (int64_t ready = stage.next_ready(); ready <= until; ready = stage.next_ready()) {
    out.push_back({ready, stage.pop()});
  }
  return out;
}

std::string joined(const std::vector<Out>& out) {
  std::string all;
  for (const Out& o : out)
    if (o.piece.kind == Piece::Kind::kData) all += o.piece.bytes;
  return all;
}

TEST(Toxic, LatencyDelaysEachPieceAndKeepsOrder) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kLatency, {.latency = 100}), true, prng, kT0);
  stage->push(Piece::data("ab"), kT0);
  stage->push(Piece::data("cd"), kT0 + 10 * kMs);
  stage->push(Piece::end(), kT0 + 20 * kMs);
  EXPECT_EQ(stage->held_bytes(), 4u);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].at, kT0 + 100 * kMs);
  EXPECT_EQ(out[1].at, kT0 + 110 * kMs);
  // The FIN follows the data without a delay of its own.
  EXPECT_EQ(out[2].at, kT0 + 110 * kMs);
  EXPECT_EQ(out[2].piece.kind, Piece::Kind::kEnd);
  EXPECT_EQ(stage->held_bytes(), 0u);
}

TEST(Toxic, LatencyJitterStaysWithinBoundsAndNeverReorders) {
  random::Prng prng(42);
  auto stage =
      make_stage(spec_of(ToxicType::kLatency, {.latency = 50, .jitter = 20}), true, prng, kT0);
  for (int i = 0; i < 1000; ++i)
    stage->push(Piece::data(std::to_string(i) + ","), kT0 + i * kMs);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 1000u);
  int64_t previous = 0;
  int64_t min_delay = kNever, max_delay = 0;
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    expected += std::to_string(i) + ",";
    EXPECT_GE(out[i].at, previous);
    previous = out[i].at;
    const int64_t delay = out[i].at - (kT0 + i * kMs);
    EXPECT_GE(delay, 30 * kMs);
    EXPECT_LT(delay, 70 * kMs + 20 * kMs);  // later only when held behind an earlier piece
    min_delay = std::min(min_delay, delay);
    max_delay = std::max(max_delay, delay);
  }
  EXPECT_EQ(joined(out), expected);
  EXPECT_LT(min_delay, 35 * kMs);  // the draws do spread over the range
  EXPECT_GT(max_delay, 65 * kMs);
}

TEST(Toxic, LatencyIsReproducibleFromTheSeed) {
  auto run = [](uint64_t seed) {
    random::Prng prng(seed);
    auto stage =
        make_stage(spec_of(ToxicType::kLatency, {.latency = 10, .jitter = 10}), true, prng, kT0);
    std::vector<int64_t> times;
    for (int i = 0; i < 50; ++i) {
      stage->push(Piece::data("x"), kT0 + i * 100 * kMs);
      times.push_back(stage->next_ready());
      stage->pop();
    }
    return times;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Toxic, BandwidthPacesBytesAtTheRate) {
  random::Prng prng(1);
  // 10 KB/s = 10 bytes per ms; parts of 10 ms (100 bytes).
  auto stage = make_stage(spec_of(ToxicType::kBandwidth, {.rate = 10}), true, prng, kT0);
  stage->push(Piece::data(std::string(1000, 'x')), kT0);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 10u);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].piece.bytes.size(), 100u);
    EXPECT_EQ(out[i].at, kT0 + static_cast<int64_t>(i + 1) * 10 * kMs);
  }
  // Idle time earns no burst: a piece after a pause starts from its arrival.
  stage->push(Piece::data(std::string(50, 'y')), kT0 + 5000 * kMs);
  out = drain(*stage);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].at, kT0 + 5005 * kMs);
}

TEST(Toxic, BandwidthZeroHoldsEverything) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kBandwidth, {.rate = 0}), true, prng, kT0);
  stage->push(Piece::data("abc"), kT0);
  stage->push(Piece::end(), kT0);
  EXPECT_EQ(stage->next_ready(), kNever);
  std::deque<Piece> held;
  stage->take_held(&held, true);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].bytes, "abc");
  EXPECT_EQ(held[1].kind, Piece::Kind::kEnd);
}

TEST(Toxic, SlowCloseDelaysOnlyTheClose) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kSlowClose, {.delay = 300}), true, prng, kT0);
  stage->push(Piece::data("abc"), kT0);
  stage->push(Piece::end(), kT0 + kMs);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].at, kT0);
  EXPECT_EQ(out[1].at, kT0 + 301 * kMs);
  EXPECT_EQ(out[1].piece.kind, Piece::Kind::kEnd);
}

TEST(Toxic, TimeoutDropsDataThenCloses) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kTimeout, {.timeout = 500}), true, prng, kT0);
  stage->push(Piece::data("dropped"), kT0 + kMs);
  EXPECT_EQ(stage->held_bytes(), 0u);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].at, kT0 + 500 * kMs);
  EXPECT_EQ(out[0].piece.kind, Piece::Kind::kClose);
  stage->push(Piece::data("after"), kT0 + 600 * kMs);
  EXPECT_EQ(stage->next_ready(), kNever);
}

TEST(Toxic, TimeoutZeroNeverClosesButRemovalDoes) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kTimeout, {.timeout = 0}), true, prng, kT0);
  stage->push(Piece::data("dropped"), kT0);
  EXPECT_EQ(stage->next_ready(), kNever);
  std::deque<Piece> held;
  stage->take_held(&held, true);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].kind, Piece::Kind::kClose);
}

TEST(Toxic, ResetPeerStartsAtTheFirstPiece) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kResetPeer, {.timeout = 200}), true, prng, kT0);
  EXPECT_EQ(stage->next_ready(), kNever);
  stage->push(Piece::data("x"), kT0 + 50 * kMs);
  stage->push(Piece::data("y"), kT0 + 60 * kMs);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].at, kT0 + 250 * kMs);
  EXPECT_EQ(out[0].piece.kind, Piece::Kind::kReset);
}

TEST(Toxic, LimitDataPassesTheLimitThenCloses) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kLimitData, {.bytes = 5}), true, prng, kT0);
  stage->push(Piece::data("abc"), kT0);
  stage->push(Piece::data("defgh"), kT0 + kMs);
  stage->push(Piece::data("ijk"), kT0 + 2 * kMs);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].piece.bytes, "abc");
  EXPECT_EQ(out[1].piece.bytes, "de");
  EXPECT_EQ(out[2].piece.kind, Piece::Kind::kClose);
}

TEST(Toxic, LimitDataCountSurvivesAnUpdate) {
  random::Prng prng(1);
  auto stage = make_stage(spec_of(ToxicType::kLimitData, {.bytes = 10}), true, prng, kT0);
  stage->push(Piece::data("abcdef"), kT0);
  drain(*stage);
  stage->configure({.bytes = 8}, kT0 + kMs);
  stage->push(Piece::data("ghijkl"), kT0 + 2 * kMs);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].piece.bytes, "gh");
  EXPECT_EQ(out[1].piece.kind, Piece::Kind::kClose);
}

TEST(Toxic, SlicerCutsAroundTheAverageWithDelays) {
  random::Prng prng(3);
  auto stage = make_stage(
      spec_of(ToxicType::kSlicer, {.delay = 1000, .average_size = 10, .size_variation = 4}), true,
      prng, kT0);
  std::string input;
  for (int i = 0; i < 1000; ++i)
    input.push_back(static_cast<char>('a' + i % 26));
  stage->push(Piece::data(input), kT0);
  auto out = drain(*stage);
  ASSERT_GT(out.size(), 50u);
  EXPECT_EQ(joined(out), input);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_LE(out[i].piece.bytes.size(), 14u);
    EXPECT_GE(out[i].piece.bytes.size(), 1u);
    EXPECT_EQ(out[i].at, kT0 + static_cast<int64_t>(i) * net::kNsPerMs);  // 1000 us apart
  }
}

TEST(Toxic, SlicerWithoutVariationGivesAverageSizedSlices) {
  random::Prng prng(3);
  auto stage = make_stage(spec_of(ToxicType::kSlicer, {.average_size = 1}), true, prng, kT0);
  stage->push(Piece::data("hello"), kT0);
  auto out = drain(*stage);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(joined(out), "hello");
}

TEST(Toxic, ValidationNamesTheAttribute) {
  EXPECT_EQ(validate_toxic(spec_of(ToxicType::kLatency, {.latency = 10})), "");
  EXPECT_NE(validate_toxic(spec_of(ToxicType::kLatency, {.latency = -1})).find("latency"),
            std::string::npos);
  EXPECT_NE(validate_toxic(spec_of(ToxicType::kSlicer, {.average_size = 10, .size_variation = 10}))
                .find("size_variation"),
            std::string::npos);
  EXPECT_NE(validate_toxic(spec_of(ToxicType::kSlicer, {})).find("average_size"),
            std::string::npos);
  EXPECT_NE(validate_toxic(spec_of(ToxicType::kBandwidth, {.rate = -5})).find("rate"),
            std::string::npos);
  EXPECT_NE(validate_toxic(spec_of(ToxicType::kLatency, {}, 1.5)).find("toxicity"),
            std::string::npos);
}

// --- Link: chains, toxicity, changes while bytes are held ---

std::string take_output(Link& link, std::vector<Piece::Kind>* kinds = nullptr) {
  std::string all;
  while (link.has_output()) {
    if (kinds) kinds->push_back(link.front().kind);
    if (link.front().kind == Piece::Kind::kData) {
      all += link.front_bytes();
      link.wrote(link.front_bytes().size());
    } else {
      link.pop_front();
    }
  }
  return all;
}

TEST(Link, WithoutToxicsEverythingIsDirect) {
  random::Prng prng(1);
  Link link(prng);
  EXPECT_TRUE(link.direct());
  link.push(Piece::data("abc"), kT0);
  EXPECT_FALSE(link.direct());
  EXPECT_EQ(link.buffered_bytes(), 3u);
  EXPECT_EQ(take_output(link), "abc");
  EXPECT_TRUE(link.direct());
}

TEST(Link, ChainsApplyInOrderAdded) {
  random::Prng prng(1);
  Link link(prng);
  link.add_toxic(1, spec_of(ToxicType::kLatency, {.latency = 100}), kT0);
  link.add_toxic(2, spec_of(ToxicType::kLatency, {.latency = 50}), kT0);
  link.push(Piece::data("abc"), kT0);
  link.advance(kT0 + 149 * kMs);
  EXPECT_FALSE(link.has_output());
  EXPECT_EQ(link.next_wakeup(), kT0 + 150 * kMs);
  link.advance(kT0 + 150 * kMs);
  EXPECT_EQ(take_output(link), "abc");
}

TEST(Link, RemovingAToxicReleasesWhatItHeld) {
  random::Prng prng(1);
  Link link(prng);
  link.add_toxic(1, spec_of(ToxicType::kLatency, {.latency = 10'000}), kT0);
  link.push(Piece::data("held"), kT0);
  link.advance(kT0 + kMs);
  EXPECT_FALSE(link.has_output());
  EXPECT_EQ(link.buffered_bytes(), 4u);
  link.remove_toxic(1, kT0 + 2 * kMs);
  EXPECT_EQ(take_output(link), "held");
  EXPECT_TRUE(link.direct());
}

TEST(Link, UpdatingLatencyAppliesToHeldBytes) {
  random::Prng prng(1);
  Link link(prng);
  ToxicSpec spec = spec_of(ToxicType::kLatency, {.latency = 10'000});
  link.add_toxic(1, spec, kT0);
  link.push(Piece::data("held"), kT0);
  spec.attributes.latency = 0;
  link.update_toxic(1, spec, kT0 + kMs);
  link.advance(kT0 + kMs);
  EXPECT_EQ(take_output(link), "held");
}

TEST(Link, ToxicityZeroNeverActsAndOneAlwaysDoes) {
  random::Prng prng(9);
  int acted = 0;
  for (int i = 0; i < 200; ++i) {
    Link never(prng);
    never.add_toxic(1, spec_of(ToxicType::kTimeout, {.timeout = 0}, 0.0), kT0);
    never.push(Piece::data("x"), kT0);
    never.advance(kT0);
    EXPECT_EQ(take_output(never), "x");
    Link half(prng);
    half.add_toxic(1, spec_of(ToxicType::kTimeout, {.timeout = 0}, 0.5), kT0);
    half.push(Piece::data("x"), kT0);
    half.advance(kT0);
    if (take_output(half).empty()) ++acted;
  }
  // 200 draws at p = 0.5: 100 +/- 35 holds with overwhelming probability, and
  // the seed makes it the same on every run.
  EXPECT_GT(acted, 65);
  EXPECT_LT(acted, 135);
}

TEST(Link, LimitDataCloseEndsTheStream) {
  random::Prng prng(1);
  Link link(prng);
  link.add_toxic(1, spec_of(ToxicType::kLimitData, {.bytes = 3}), kT0);
  link.push(Piece::data("abcdef"), kT0);
  link.advance(kT0);
  std::vector<Piece::Kind> kinds;
  EXPECT_EQ(take_output(link, &kinds), "abc");
  ASSERT_EQ(kinds.size(), 2u);
  EXPECT_EQ(kinds[1], Piece::Kind::kClose);
}

TEST(Link, BandwidthThenLatencyAddUp) {
  random::Prng prng(1);
  Link link(prng);
  link.add_toxic(1, spec_of(ToxicType::kBandwidth, {.rate = 100}), kT0);  // 100 B/ms
  link.add_toxic(2, spec_of(ToxicType::kLatency, {.latency = 20}), kT0);
  link.push(Piece::data(std::string(500, 'z')), kT0);  // one part of <= 1000 bytes: 5 ms
  link.advance(kT0 + 24 * kMs);
  EXPECT_FALSE(link.has_output());
  link.advance(kT0 + 25 * kMs);
  EXPECT_EQ(take_output(link).size(), 500u);
}

}  // namespace toxic_test
}  // namespace millstone::proxy
