#include "nasforge/costs.h"

#include <algorithm>

#include "nasforge/error.h"
#include "nasforge/ops.h"

namespace nasforge {
namespace {
std::int64_t numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}
// Checked arithmetic: a large batch (or a huge supernet) must not overflow silently.
[[noreturn]] void overflow() {
  throw InvalidArgument("analytic_costs: expected counts below 2^63, found larger ones (batch too large?)");
}
std::int64_t mul(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}
std::int64_t add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
}  // namespace

AnalyticCosts analytic_costs(const ConcreteNetwork& net, const CostOptions& options) {
  NASFORGE_CHECK(options.batch >= 1, "analytic_costs: expected batch >= 1, got {}", options.batch);
  NASFORGE_CHECK(options.bytes_per_element >= 1,
                 "analytic_costs: expected bytes_per_element >= 1, got {}",
                 options.bytes_per_element);
  const auto n = static_cast<int>(net.layers.size());
  const std::int64_t scale = mul(options.batch, options.bytes_per_element);

  AnalyticCosts total;
  total.layers.reserve(net.layers.size());
  // last_use[i + 1]: index of the last layer reading tensor i (i = -1 is the network input).
  std::vector<int> last_use(n + 1, -1);
  std::vector<std::int64_t> bytes(n + 1, 0);
  std::vector<std::int64_t> workspace(n, 0);
  bytes[0] = mul(numel(net.input_shape), scale);
  for (int i = 0; i < n; ++i) {
    const auto& l = net.layers[i];
    const OpDef& def = find_op(l.op);
    LayerCost c = def.cost(l.input_shapes, l.output_shape, l.attrs);
    LayerCosts lc{l.name, l.op, c.params, mul(c.macs, options.batch),
                  def.materialized ? mul(numel(l.output_shape), scale) : 0};
    total.params = add(total.params, lc.params);
    total.macs = add(total.macs, lc.macs);
    bytes[i + 1] = lc.output_bytes;
    workspace[i] = mul(c.workspace, scale);
    lc.workspace_bytes = workspace[i];
    for (int in : l.inputs) {
      NASFORGE_CHECK(in >= -1 && in < i, "analytic_costs: layer {} reads {}, expected an earlier layer",
                     i, in);
      last_use[in + 1] = std::max(last_use[in + 1], i);
    }
    total.layers.push_back(std::move(lc));
  }

  // A tensor nobody reads dies right after it is produced (the input: after layer 0).
  std::vector<std::vector<int>> frees(std::max(n, 1));
  for (int t = 0; t <= n; ++t) {
    int at = last_use[t] >= 0 ? std::min(last_use[t], n - 1) : std::max(t - 1, 0);
    if (t == n && n > 0) continue;  // the output stays alive to the end
    frees[at].push_back(t);
  }
  // Sweep: while layer i runs, every tensor produced before i and read at or after i is alive,
  // plus i's output and its internal workspace.
  std::int64_t live = bytes[0];
  std::int64_t peak = live;
  for (int i = 0; i < n; ++i) {
    live = add(live, bytes[i + 1]);
    peak = std::max(peak, add(live, workspace[i]));
    for (int t : frees[i]) live -= bytes[t];
  }
  total.peak_activation_bytes = peak;
  return total;
}

std::vector<bool> live_layers(const ConcreteNetwork& net) {
  const std::size_t n = net.layers.size();
  std::vector<bool> live(n, false);
  if (n == 0) return live;
  // depends[i]: layer i's output depends on the network input's values.
  std::vector<bool> depends(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    const ConcreteLayer& l = net.layers[i];
    if (l.op == "zero") continue;
    for (int in : l.inputs) {
      NASFORGE_CHECK(
          in >= -1 && static_cast<std::size_t>(in + 1) <= i,
          "live_layers: layer {} ({}) reads {}, expected an earlier layer or -1 (the input)", i,
          l.name, in);
      if (in < 0 || depends[static_cast<std::size_t>(in)]) depends[i] = true;
    }
  }
  if (!depends[n - 1]) return live;  // a constant output: the runtime folds the network away
  live[n - 1] = true;
  for (std::size_t i = n; i-- > 0;) {
    if (!live[i] || net.layers[i].op == "zero") continue;
    for (int in : net.layers[i].inputs) {
      if (in >= 0) live[static_cast<std::size_t>(in)] = true;
    }
  }
  return live;
}

}  // namespace nasforge
