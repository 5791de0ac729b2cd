// amqp.publish and amqp.expect steps of scenario flows
// (docs/amqp.md#scenario-steps). The worker holds one AMQP connection
// (AmqpLink) for all its VUs and consumes each queue an expect reads once;
// deliveries reach the waiting VU through a CorrelationTable per queue (one
// hash lookup). An expect's latency is end to end: from when the flow's last
// HTTP request or publish was due to the matching message's arrival, on this
// worker's monotonic clock.
#include <algorithm>
#include <ctime>

#include "net/clock.h"
#include "scenario/virtual_user.h"

namespace millstone::scenario {

using metrics::ErrorCause;
using AmqpWait = VirtualUser::AmqpWait;

namespace {

// Messages held for a VU that does not wait yet, per queue and worker.
constexpr size_t kMaxHeld = 64 * 1024;

// splitmix64: the run's tag from what every worker knows alike.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

bool ScenarioWorkload::prepare_amqp(int64_t start_ns, std::string* error) {
  run_tag_ = mix(plan_.seed ^ static_cast<uint64_t>(start_ns));
  if (!plan_.amqp.enabled) return true;
  if (plan_.amqp.tls) {
    // The scenario's defaults: tls: (CA, client certificate, insecure,
    // versions) as for an https:// target; the broker's host is the name
    // verified. No ALPN: AMQP has none.
    try {
      tls::TlsClientOptions options = plan_.tls;
      options.alpn.clear();
      tls_amqp_ = std::make_unique<tls::TlsClientContext>(options);
    } catch (const tls::TlsSetupError& e) {
      *error = std::string("amqps: ") + e.what();  // the loader checked the files: rare
      return false;
    }
  }
  amqp_gone_ = false;
  amqp_confirms_.clear();
  const int64_t hold_ns = std::max<int64_t>(plan_.amqp.hold_us, plan_.timeout_us) * net::kNsPerUs;
  correlations_.clear();
  for (size_t i = 0; i < plan_.amqp.consumed.size(); ++i) {
    correlations_.emplace_back(kMaxHeld, hold_ns);
  }
  amqp_ = std::make_unique<AmqpLink>(loop_, plan_.amqp, share_.index, *this, &current_,
                                     tls_amqp_.get(), plan_.tls_server_name);
  if (!amqp_->start(net::now_ns(), error)) {
    *error = "amqp: " + *error;
    return false;
  }
  return true;
}

void ScenarioWorkload::run_amqp_step(VirtualUser& vu) {
  const Flow& flow = plan_.flows[vu.flow];
  const AmqpStep& step = flow.amqp_steps[flow.program[vu.pc].arg];
  const int64_t now = net::now_ns();
  vu.amqp_started_ns = now;
  mark_origin(vu, now);  // a publish marks when it was due, below
  if (amqp_gone_) {
    // The broker's certificate or TLS version was refused: no connection
    // will come. Backs off like a refused connection, not a busy loop.
    ++vu.failures;
    const ErrorCause cause = ErrorCause::kAmqpError;
    amqp_step_failed(vu, &cause);
    return;
  }
  if (step.kind == AmqpStep::Kind::kPublish) {
    if (amqp_->ready()) {
      amqp_publish(vu, now);
      return;
    }
    // Not connected (yet, or again): the step waits for it, up to the
    // scenario's timeout.
    vu.amqp_wait = AmqpWait::kLink;
    amqp_parked_.push_back(&vu);
    vu.timer.arm_after(plan_.timeout_us * net::kNsPerUs);
    return;
  }
  const RenderContext ctx = render_context(vu);
  vu.amqp_key.clear();
  step.key.render(ctx, &vu.amqp_key);
  uint64_t tag = 0;
  const int64_t arrived = correlations_[step.queue].wait(vu.amqp_key, vu.connection.index(), &tag);
  if (arrived < 0) {
    // Another VU of this worker waits for the same value: the flow's key is
    // not unique per iteration. A failure of the step, not of the service.
    amqp_step_failed(vu, nullptr);
    return;
  }
  if (arrived > 0) {
    if (plan_.amqp.consumed[step.queue].manual_ack) amqp_->settle(tag, step.on_match, step.requeue);
    vu.amqp_wait = AmqpWait::kMessage;  // settled by amqp_step_ok
    const int64_t origin = origin_of(vu, vu.origin_ns);
    if (correlations_[step.queue].out_of_order(origin)) {
      current_.add_error(ErrorCause::kOutOfOrderMessage);
    }
    amqp_step_ok(vu, arrived - origin);
    return;
  }
  vu.amqp_wait = AmqpWait::kMessage;
  const int64_t timeout_us = step.timeout_us > 0 ? step.timeout_us : plan_.timeout_us;
  vu.timer.arm_after(timeout_us * net::kNsPerUs);
}

void ScenarioWorkload::amqp_publish(VirtualUser& vu, int64_t now) {
  const Flow& flow = plan_.flows[vu.flow];
  const AmqpStep& step = flow.amqp_steps[flow.program[vu.pc].arg];
  const RenderContext ctx = render_context(vu);
  amqp::BasicProperties properties;
  if (step.correlation_id) properties.correlation_id = step.correlation_id->render(ctx);
  if (step.message_id) properties.message_id = step.message_id->render(ctx);
  if (step.reply_to) properties.reply_to = step.reply_to->render(ctx);
  if (!step.content_type.empty()) properties.content_type = step.content_type;
  if (step.delivery_mode != 0) properties.delivery_mode = step.delivery_mode;
  if (!step.headers.empty()) {
    amqp::FieldTable headers;
    for (const auto& [name, value] : step.headers) {
      headers.emplace_back(name, amqp::FieldValue::of_string(value.render(ctx)));
    }
    properties.headers = std::move(headers);
  }
  scratch_.clear();
  step.routing_key.render(ctx, &scratch_);
  amqp_body_.clear();
  step.body.render(ctx, &amqp_body_);
  // Like a request: the first step of an arrival-rate iteration counts from
  // when the iteration was due.
  const int64_t intended = vu.first_request ? std::min(vu.iteration_intended_ns, now) : now;
  vu.first_request = false;
  uint64_t tag = 0;
  if (!amqp_->publish(step.exchange, scratch_, properties, amqp_body_, &tag)) {
    const ErrorCause cause = ErrorCause::kAmqpError;
    amqp_step_failed(vu, &cause);
    return;
  }
  vu.origin_ns = intended;
  mark_origin(vu, intended);
  const int64_t from = std::min(intended, vu.amqp_started_ns);
  if (step.confirm && tag != 0) {
    // Publisher confirms: the step's latency is from when the publish was
    // due to the broker's ack, like `millstone amqp`'s confirm latency.
    vu.amqp_started_ns = from;
    vu.amqp_tag = tag;
    vu.amqp_wait = AmqpWait::kConfirm;
    amqp_confirms_[tag] = vu.connection.index();
    vu.timer.arm_after(plan_.timeout_us * net::kNsPerUs);
    return;
  }
  // The step's time is what it waited for the connection: the message is
  // handed to the socket now.
  amqp_step_ok(vu, now - from);
}

void ScenarioWorkload::amqp_step_ok(VirtualUser& vu, int64_t latency_ns) {
  if (vu.amqp_wait != AmqpWait::kNone) vu.timer.cancel();
  vu.amqp_wait = AmqpWait::kNone;
  const Flow& flow = plan_.flows[vu.flow];
  metrics::StepStats& step = current_.steps[flow.program[vu.pc].metric];
  ++step.requests;
  step.latency.record(static_cast<uint64_t>(std::max<int64_t>(0, latency_ns)) / 1000);
  vu.failures = 0;
  ++vu.pc;
  execute(vu);
}

void ScenarioWorkload::amqp_step_failed(VirtualUser& vu, const ErrorCause* cause) {
  if (vu.amqp_wait != AmqpWait::kNone) vu.timer.cancel();
  vu.amqp_wait = AmqpWait::kNone;
  const Flow& flow = plan_.flows[vu.flow];
  metrics::StepStats& step = current_.steps[flow.program[vu.pc].metric];
  ++step.failed;
  if (cause != nullptr) {
    ++step.errors;
    current_.add_error(*cause);
  }
  finish_iteration(vu, false);
}

void ScenarioWorkload::amqp_abandon(VirtualUser& vu) {
  if (vu.amqp_wait == AmqpWait::kNone) return;
  if (vu.amqp_wait == AmqpWait::kMessage) {
    const Flow& flow = plan_.flows[vu.flow];
    const AmqpStep& step = flow.amqp_steps[flow.program[vu.pc].arg];
    correlations_[step.queue].cancel(vu.amqp_key, vu.connection.index());
  } else if (vu.amqp_wait == AmqpWait::kConfirm) {
    // A confirm that comes later finds no VU and is ignored.
    auto it = amqp_confirms_.find(vu.amqp_tag);
    if (it != amqp_confirms_.end() && it->second == vu.connection.index()) amqp_confirms_.erase(it);
  } else {
    amqp_parked_.erase(std::remove(amqp_parked_.begin(), amqp_parked_.end(), &vu),
                       amqp_parked_.end());
  }
  vu.amqp_wait = AmqpWait::kNone;
  vu.timer.cancel();
}

void ScenarioWorkload::amqp_timer(VirtualUser& vu) {
  const AmqpWait wait = vu.amqp_wait;
  amqp_abandon(vu);
  // Lost: the message did not come within the timeout. Or the broker did
  // not confirm a publish, or the connection was not there for one, within
  // the scenario's timeout.
  const ErrorCause cause = wait == AmqpWait::kMessage   ? ErrorCause::kMessageTimeout
                           : wait == AmqpWait::kConfirm ? ErrorCause::kTimeout
                                                        : ErrorCause::kAmqpError;
  amqp_step_failed(vu, &cause);
}

void ScenarioWorkload::on_amqp_ready() {
  std::vector<VirtualUser*> parked;
  parked.swap(amqp_parked_);
  const int64_t now = net::now_ns();
  for (VirtualUser* vu : parked) {
    if (vu->amqp_wait != AmqpWait::kLink) continue;
    vu->timer.cancel();
    vu->amqp_wait = AmqpWait::kNone;
    amqp_publish(*vu, now);
  }
}

void ScenarioWorkload::on_amqp_confirm(uint64_t tag, bool multiple, bool ack) {
  // The VUs this confirm settles, taken out first: a finished step may
  // publish again (a new, higher tag) before the loop is over.
  std::vector<uint32_t> settled;
  auto first = multiple ? amqp_confirms_.begin() : amqp_confirms_.find(tag);
  auto last = multiple ? amqp_confirms_.upper_bound(tag)
                       : (first == amqp_confirms_.end() ? first : std::next(first));
  for (auto it = first; it != last; ++it)
    settled.push_back(it->second);
  amqp_confirms_.erase(first, last);
  const int64_t now = net::now_ns();
  for (uint32_t index : settled) {
    VirtualUser& vu = *vus_[index];
    if (vu.amqp_wait != AmqpWait::kConfirm) continue;
    if (ack) {
      amqp_step_ok(vu, now - vu.amqp_started_ns);
    } else {
      const ErrorCause cause = ErrorCause::kPublishNacked;
      amqp_step_failed(vu, &cause);
    }
  }
}

void ScenarioWorkload::amqp_ack_expired(uint32_t queue, int64_t now) {
  amqp_tags_.clear();
  const uint64_t expired = correlations_[queue].expire(now, &amqp_tags_);
  if (expired > 0) current_.add_error(ErrorCause::kUnmatchedMessage, expired);
  if (!plan_.amqp.consumed[queue].manual_ack) return;
  for (uint64_t tag : amqp_tags_)
    amqp_->settle(tag, AmqpStep::Settle::kAck, false);
}

void ScenarioWorkload::on_amqp_delivery(uint32_t queue, const amqp::Delivery& delivery,
                                        int64_t now_ns) {
  const AmqpSettings::Consumed& consumed = plan_.amqp.consumed[queue];
  // Manual acks: what no VU claims is acknowledged (consumed, as without
  // acks) and counted unmatched; the claimed message is settled as its
  // step says.
  const bool manual = consumed.manual_ack;
  auto ack_unclaimed = [&] {
    if (manual) amqp_->settle(delivery.delivery_tag, AmqpStep::Settle::kAck, false);
  };
  const amqp::BasicProperties& props = *delivery.properties;
  std::string_view key;
  bool found = false;
  switch (consumed.by) {
    case AmqpSettings::Consumed::By::kCorrelationId:
      found = props.correlation_id.has_value();
      if (found) key = *props.correlation_id;
      break;
    case AmqpSettings::Consumed::By::kMessageId:
      found = props.message_id.has_value();
      if (found) key = *props.message_id;
      break;
    case AmqpSettings::Consumed::By::kHeader:
      if (props.headers) {
        const amqp::FieldValue* v = amqp::find_field(*props.headers, consumed.field);
        if (v != nullptr && v->kind == amqp::FieldValue::Kind::kString) {
          found = true;
          key = v->text;
        } else if (v != nullptr && (v->kind == amqp::FieldValue::Kind::kInt ||
                                    v->kind == amqp::FieldValue::Kind::kUnsigned)) {
          scratch_ = v->kind == amqp::FieldValue::Kind::kInt ? std::to_string(v->integer)
                                                             : std::to_string(v->uinteger);
          found = true;
          key = scratch_;
        }
      }
      break;
    case AmqpSettings::Consumed::By::kJson: {
      const std::vector<const JsonPath*> paths{&*consumed.path};
      json_.evaluate(delivery.body, paths, &amqp_outcomes_, &amqp_values_);
      found = amqp_outcomes_[0] == JsonEvaluator::Outcome::kFound;
      if (found) key = amqp_values_[0].text;
      break;
    }
  }
  if (!found) {
    current_.add_error(ErrorCause::kUnmatchedMessage);  // carries no correlation value
    ack_unclaimed();
    return;
  }
  CorrelationTable& table = correlations_[queue];
  amqp_ack_expired(queue, now_ns);
  const CorrelationTable::Delivered d = table.deliver(key, now_ns, delivery.delivery_tag);
  if (d.unmatched) {
    current_.add_error(d.duplicate ? ErrorCause::kDuplicateMessage : ErrorCause::kUnmatchedMessage);
    ack_unclaimed();
  }
  if (d.waiter == CorrelationTable::kNoWaiter) return;
  VirtualUser& vu = *vus_[d.waiter];
  if (vu.amqp_wait != AmqpWait::kMessage) {  // cannot happen: waits are cancelled
    ack_unclaimed();
    return;
  }
  const Flow& flow = plan_.flows[vu.flow];
  const AmqpStep& step = flow.amqp_steps[flow.program[vu.pc].arg];
  if (manual) amqp_->settle(delivery.delivery_tag, step.on_match, step.requeue);
  if (step.contains) {
    amqp_body_.clear();
    step.contains->render(render_context(vu), &amqp_body_);
    if (delivery.body.find(amqp_body_) == std::string_view::npos) {
      amqp_step_failed(vu, nullptr);  // the right message, not the expected content
      return;
    }
  }
  const int64_t origin = origin_of(vu, vu.origin_ns);
  if (table.out_of_order(origin)) current_.add_error(ErrorCause::kOutOfOrderMessage);
  amqp_step_ok(vu, now_ns - origin);
}

void ScenarioWorkload::on_amqp_down(std::string_view, ErrorCause cause, bool for_good) {
  // amqp_error, or the TLS handshake's own cause (amqps://).
  current_.add_error(cause);
  amqp_gone_ = for_good;
  // Waits on this connection's consumers are lost with it; messages held
  // for VUs that did not wait yet are dropped (counted unmatched).
  for (CorrelationTable& table : correlations_) {
    current_.add_error(ErrorCause::kUnmatchedMessage, table.clear_held());
  }
  // So are the publishes waiting for a confirm (their tags die with the
  // channel), and, when it will not come back, those waiting for it.
  for (auto& vu : vus_) {
    const bool lost = vu->amqp_wait == AmqpWait::kMessage || vu->amqp_wait == AmqpWait::kConfirm ||
                      (for_good && vu->amqp_wait == AmqpWait::kLink);
    if (!lost) continue;
    amqp_abandon(*vu);
    const ErrorCause failed = ErrorCause::kAmqpError;
    amqp_step_failed(*vu, &failed);
  }
  amqp_confirms_.clear();
}

void ScenarioWorkload::amqp_sweep(int64_t now) {
  if (!amqp_) return;
  amqp_->tick(now);
  for (uint32_t queue = 0; queue < correlations_.size(); ++queue)
    amqp_ack_expired(queue, now);
}

}  // namespace millstone::scenario
