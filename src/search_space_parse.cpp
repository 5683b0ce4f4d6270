// The DSL front end: JSON (comments allowed) -> SpaceImpl. Every error names the origin, the
// JSON path and what was expected versus found (docs/search_space_dsl.md is the grammar).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "detail/big_uint.h"
#include "detail/space_impl.h"
#include "nasforge/error.h"

namespace nasforge::detail {

using json = nlohmann::ordered_json;

// ---- expression evaluation ----------------------------------------------------------------

namespace {
Value arith(Expr::Op op, const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) {
    throw InvalidArgument(fmt::format("arithmetic needs numbers, found {} and {}", a.repr(), b.repr()));
  }
  if (a.is_int() && b.is_int()) {
    std::int64_t x = a.as_int(), y = b.as_int(), r = 0;
    switch (op) {
      case Expr::Op::kAdd:
        if (__builtin_add_overflow(x, y, &r)) throw InvalidArgument("integer overflow in expression");
        return r;
      case Expr::Op::kSub:
        if (__builtin_sub_overflow(x, y, &r)) throw InvalidArgument("integer overflow in expression");
        return r;
      case Expr::Op::kMul:
        if (__builtin_mul_overflow(x, y, &r)) throw InvalidArgument("integer overflow in expression");
        return r;
      case Expr::Op::kDiv:
      case Expr::Op::kFloorDiv:
        if (y == 0) throw InvalidArgument("division by zero in expression");
        // INT64_MIN / -1 overflows (and x % -1 traps on x86).
        if (y == -1 && x == std::numeric_limits<std::int64_t>::min()) {
          throw InvalidArgument("integer overflow in expression");
        }
        if (op == Expr::Op::kFloorDiv || x % y == 0) {
          std::int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
          return q;
        }
        return static_cast<double>(x) / static_cast<double>(y);
      default: break;
    }
  }
  double x = a.as_double(), y = b.as_double(), r = 0;
  switch (op) {
    case Expr::Op::kAdd: r = x + y; break;
    case Expr::Op::kSub: r = x - y; break;
    case Expr::Op::kMul: r = x * y; break;
    case Expr::Op::kDiv:
      if (y == 0) throw InvalidArgument("division by zero in expression");
      r = x / y;
      break;
    case Expr::Op::kFloorDiv:
      if (y == 0) throw InvalidArgument("division by zero in expression");
      r = std::floor(x / y);
      break;
    default: throw InvalidArgument("bad expression operator");
  }
  // Reals in a space are finite (JSON has no inf or NaN); an overflowing product is an error.
  if (!std::isfinite(r)) throw InvalidArgument(fmt::format("expected a finite result, found {}", r));
  return r;
}
// -1, 0, 1 as integer i is below, equal to or above the finite real d, exactly.
int compare_int_real(std::int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  const double t = std::trunc(d);
  const auto ti = static_cast<std::int64_t>(t);
  if (i != ti) return i < ti ? -1 : 1;
  return d > t ? -1 : (d < t ? 1 : 0);
}
int kind_rank(const Value& v) { return v.is_number() ? 0 : (v.is_bool() ? 1 : 2); }
}  // namespace

int compare_options(const Value& a, const Value& b) {
  if (kind_rank(a) != kind_rank(b)) return kind_rank(a) < kind_rank(b) ? -1 : 1;
  if (a.is_int() && b.is_int()) return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  if (a.is_int()) return compare_int_real(a.as_int(), b.as_double());
  if (b.is_int()) return -compare_int_real(b.as_int(), a.as_double());
  if (a.is_number()) return a.as_double() < b.as_double() ? -1 : (a.as_double() > b.as_double() ? 1 : 0);
  if (a.is_bool()) return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
  const int c = a.as_string().compare(b.as_string());
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

Value eval_expr(const Expr& e, const std::vector<Decision>& decisions, const Architecture* arch) {
  if (e.toks.size() == 1) {  // the common case: a constant or a bare choice
    const auto& t = e.toks[0];
    if (t.op == Expr::Op::kConst) return t.value;
    if (t.op == Expr::Op::kRef) {
      if (!arch) throw InvalidArgument("expression depends on a decision");
      return decisions[t.decision].options[(*arch)[t.decision]];
    }
  }
  std::vector<Value> stack;
  for (const auto& t : e.toks) {
    switch (t.op) {
      case Expr::Op::kConst: stack.push_back(t.value); break;
      case Expr::Op::kRef:
        if (!arch) throw InvalidArgument("expression depends on a decision");
        stack.push_back(decisions[t.decision].options[(*arch)[t.decision]]);
        break;
      case Expr::Op::kNeg: {
        Value v = stack.back();
        stack.pop_back();
        if (v.is_int() && v.as_int() == std::numeric_limits<std::int64_t>::min()) {
          throw InvalidArgument("integer overflow in expression");
        }
        if (v.is_int()) stack.emplace_back(-v.as_int());
        else if (v.is_double()) stack.emplace_back(-v.as_double());
        else throw InvalidArgument(fmt::format("cannot negate {}", v.repr()));
        break;
      }
      default: {
        Value b = stack.back();
        stack.pop_back();
        Value a = stack.back();
        stack.pop_back();
        stack.push_back(arith(t.op, a, b));
      }
    }
  }
  return stack.back();
}

namespace {

constexpr int kMaxNesting = 16;
constexpr std::size_t kMaxItems = 20000;  // concrete layers (a cell counts all it can produce)
constexpr std::size_t kMaxOptions = 65536;
constexpr std::int64_t kMaxRepeat = 10000;
constexpr std::int64_t kMaxDepth = 1000;
constexpr int kMaxCellNodes = 32;
constexpr int kMaxJsonDepth = 128;
// Work limits, so that no input of a few kilobytes makes parsing or resolving slow: repeats and
// stage depths multiply their bodies, and parameters inline into the expressions using them.
constexpr std::size_t kMaxWork = 1000000;          // JSON values + string bytes, after expansion
constexpr std::size_t kMaxTotalOptions = 1000000;  // options summed over all decisions
constexpr std::size_t kMaxExprTokens = 256;        // terms of one expression, parameters inlined

// The size of a JSON value: one per value plus the bytes of its strings and keys.
std::size_t json_weight(const json& j) {
  if (j.is_string()) return 1 + j.get_ref<const std::string&>().size();
  std::size_t w = 1;
  if (j.is_object()) {
    for (const auto& kv : j.items()) w += kv.key().size() + json_weight(kv.value());
  } else if (j.is_array()) {
    for (const auto& e : j) w += json_weight(e);
  }
  return w;
}

std::string child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}
std::string index(const std::string& path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

const char* type_name(const json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();
}

std::string preview(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Layers a cell can produce: its preprocessing, one per edge, a sum per node, the concat.
std::size_t cell_layers(const CellStruct& c) {
  return static_cast<std::size_t>(c.inputs) + c.edges.size() + static_cast<std::size_t>(c.nodes) + 1;
}

struct ParamVal {
  bool is_list = false;
  Expr scalar;
  std::vector<Expr> list;
};

class Parser {
 public:
  Parser(std::string origin, const ParamOverrides& overrides)
      : overrides_(overrides), impl_(std::make_shared<SpaceImpl>()) {
    impl_->origin = std::move(origin);
  }

  std::shared_ptr<SpaceImpl> run(std::string_view text);

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw SearchSpaceError(impl_->origin, path, what);
  }

  void expect_keys(const json& obj, const std::string& path,
                   std::initializer_list<const char*> allowed) const {
    for (const auto& kv : obj.items()) {
      const std::string& k = kv.key();  // not a structured binding: clang < 16 cannot capture one
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; })) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        fail(child(path, k), fmt::format("unknown key \"{}\"; expected one of: {}", k,
                                         fmt::join(names, ", ")));
      }
    }
  }

  const json& require(const json& obj, const char* key, const std::string& path) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(path, fmt::format("missing required key \"{}\"", key));
    return *it;
  }

  std::int64_t const_int(const json& j, const std::string& path, std::int64_t lo,
                         std::int64_t hi) {
    Expr e = parse_value(j, path, /*allow_choice=*/false);
    Value v = eval_const(e, path);
    if (v.is_double() && std::floor(v.as_double()) == v.as_double() &&
        std::abs(v.as_double()) < 9e15) {
      v = static_cast<std::int64_t>(v.as_double());
    }
    if (!v.is_int()) fail(path, fmt::format("expected an integer, found {} {}", v.kind_name(), v.repr()));
    if (v.as_int() < lo || v.as_int() > hi) {
      fail(path, fmt::format("expected an integer in [{}, {}], found {}", lo, hi, v.as_int()));
    }
    return v.as_int();
  }

  bool const_bool(const json& j, const std::string& path) {
    if (!j.is_boolean()) fail(path, fmt::format("expected a boolean, found {} {}", type_name(j), preview(j)));
    return j.get<bool>();
  }

  std::string const_string(const json& j, const std::string& path) {
    if (!j.is_string()) fail(path, fmt::format("expected a string, found {} {}", type_name(j), preview(j)));
    return j.get<std::string>();
  }

  Value eval_const(const Expr& e, const std::string& path) {
    if (!e.is_const()) fail(path, "expected a fixed value, found one that depends on a choice");
    try {
      return eval_expr(e, impl_->decisions, nullptr);
    } catch (const InvalidArgument& err) {
      fail(path, err.what());
    }
  }

  // ---- values: constants, "$expressions", {"choice": [...]} ----
  Expr parse_value(const json& j, const std::string& path, bool allow_choice,
                   DecisionKind kind = DecisionKind::kValue,
                   const std::string& auto_name = {});
  Expr parse_expression(const std::string& text, const std::string& path);
  int declare_decision(std::string name, DecisionKind kind, std::vector<Value> options,
                       const std::string& path, bool named);
  void touch(const Expr& e);
  void touch_decision(int d);

  // ---- sections ----
  void parse_params(const json& j);
  void parse_ops(const json& j);
  OpTemplate parse_op(const json& j, const std::string& path, const std::string& label,
                      bool in_library, bool need_required, const std::set<std::string>& injected,
                      const std::string& name = {});
  std::vector<OpTemplate> parse_op_list(const json& j, const std::string& path,
                                        const std::set<std::string>& injected,
                                        const std::vector<Attr>* shared);
  void parse_items(const json& arr, const std::string& path, const std::string& name,
                   std::vector<Item>& out, int depth);
  Item parse_item(const json& j, const std::string& path, const std::string& name, int depth);
  Item parse_stage(const json& j, const std::string& path, const std::string& name, int depth);
  Item parse_cell(const json& j, const std::string& path, const std::string& name);
  Item parse_choose(const json& j, const std::string& path, const std::string& name);
  std::vector<Attr> parse_attrs(const json& j, const std::string& path, const OpDef* def,
                                const std::string& name, std::initializer_list<const char*> skip);
  void parse_native(const json& j);
  void finish();

  const ParamOverrides& overrides_;
  std::shared_ptr<SpaceImpl> impl_;
  std::vector<std::pair<std::string, ParamVal>> params_;
  std::map<std::string, OpTemplate> library_;
  std::map<std::string, std::size_t> library_weight_;  // json_weight of each library op
  std::map<std::string, std::shared_ptr<CellStruct>> cells_;
  std::map<std::string, int> decision_by_name_;
  std::vector<bool> named_;
  // Ownership tracking for conditional decisions (see Owner): the scope each decision is used
  // in; -2 unused, -1 global.
  std::vector<int> scope_of_;
  struct Scope {
    Owner owner;
  };
  std::vector<Scope> scopes_;
  int current_scope_ = -1;
  std::size_t item_count_ = 0;  // concrete layers the network can produce
  std::size_t work_ = 0;        // see kMaxWork
  std::size_t total_options_ = 0;
  bool in_params_ = false;  // parsing `params`: only earlier params are visible

  void charge(const std::string& path, std::size_t work) {
    work_ += work;
    if (work_ > kMaxWork) {
      fail(path, fmt::format("expected the network to expand to at most {} JSON values and string "
                             "bytes (repeats and stages copy their bodies), found more",
                             kMaxWork));
    }
  }
  void charge_layers(const std::string& path, std::size_t layers) {
    item_count_ += layers;
    if (item_count_ > kMaxItems) {
      fail(path, fmt::format("expected at most {} layers after expanding repeats, stages and cells, "
                             "found more", kMaxItems));
    }
  }
  std::string document_;  // the document without params, for the fingerprint
};

// ---- expressions --------------------------------------------------------------------------

Expr Parser::parse_expression(const std::string& text, const std::string& path) {
  // Recursive descent over: expr := term (('+'|'-') term)*; term := unary (('*'|'/'|'//')
  // unary)*; unary := '-' unary | atom; atom := number | $name | ${name} | '(' expr ')'.
  std::size_t pos = 0;
  Expr out;
  auto err = [&](const std::string& what) -> void {
    fail(path, fmt::format("bad expression \"{}\" at character {}: {}", text, pos + 1, what));
  };
  auto skip = [&] {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  };
  int nesting = 0;
  bool symbolic = false;  // depends on a choice
  std::function<void()> expr, term, unary;
  auto atom = [&] {
    skip();
    if (pos >= text.size()) err("expected a value");
    char c = text[pos];
    if (c == '(') {
      ++pos;
      if (++nesting > 64) err("too deeply nested");
      expr();
      skip();
      if (pos >= text.size() || text[pos] != ')') err("expected ')'");
      ++pos;
      --nesting;
      return;
    }
    if (c == '$') {
      ++pos;
      bool braced = pos < text.size() && text[pos] == '{';
      if (braced) ++pos;
      std::size_t start = pos;
      while (pos < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[pos])) || text[pos] == '_')) {
        ++pos;
      }
      std::string name = text.substr(start, pos - start);
      if (name.empty()) err("expected a parameter name after '$'");
      if (braced) {
        if (pos >= text.size() || text[pos] != '}') err("expected '}'");
        ++pos;
      }
      auto it = std::find_if(params_.begin(), params_.end(),
                             [&](const auto& p) { return p.first == name; });
      if (it == params_.end()) {
        std::vector<std::string> names;
        for (const auto& p : params_) names.push_back(p.first);
        fail(path, fmt::format("unknown parameter \"${}\"; parameters declared {}: {}", name,
                               in_params_ ? "before it" : "in params",
                               names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "))));
      }
      if (it->second.is_list) {
        fail(path, fmt::format("parameter \"${}\" is a list and cannot be used in an expression", name));
      }
      out.toks.insert(out.toks.end(), it->second.scalar.toks.begin(), it->second.scalar.toks.end());
      // Parameters are inlined (constant ones folded to one term); without a bound, choice-
      // dependent "b": "$a+$a", "c": "$b+$b", ... would double at each step.
      symbolic = symbolic || !it->second.scalar.is_const();
      if (symbolic && out.toks.size() > kMaxExprTokens) {
        err(fmt::format("expected at most {} terms in an expression that depends on a choice "
                        "(parameters expanded), found more", kMaxExprTokens));
      }
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      std::size_t start = pos;
      bool real = false;
      while (pos < text.size() && (std::isdigit(static_cast<unsigned char>(text[pos])) ||
                                   text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E')) {
        if (text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E') real = true;
        ++pos;
      }
      std::string num = text.substr(start, pos - start);
      try {
        std::size_t used = 0;
        if (real) {
          double d = std::stod(num, &used);
          if (used != num.size()) err("bad number");
          out.toks.push_back({Expr::Op::kConst, Value(d), -1});
        } else {
          long long v = std::stoll(num, &used);
          if (used != num.size()) err("bad number");
          out.toks.push_back({Expr::Op::kConst, Value(static_cast<std::int64_t>(v)), -1});
        }
      } catch (const std::logic_error&) {
        err("bad number");
      }
      return;
    }
    err(fmt::format("unexpected '{}'", c));
  };
  unary = [&] {
    skip();
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      if (++nesting > 64) err("too deeply nested");
      unary();
      --nesting;
      out.toks.push_back({Expr::Op::kNeg, Value(), -1});
      return;
    }
    atom();
  };
  term = [&] {
    unary();
    for (;;) {
      skip();
      if (pos >= text.size()) return;
      Expr::Op op;
      if (text.compare(pos, 2, "//") == 0) {
        op = Expr::Op::kFloorDiv;
        pos += 2;
      } else if (text[pos] == '*') {
        op = Expr::Op::kMul;
        ++pos;
      } else if (text[pos] == '/') {
        op = Expr::Op::kDiv;
        ++pos;
      } else {
        return;
      }
      unary();
      out.toks.push_back({op, Value(), -1});
    }
  };
  expr = [&] {
    term();
    for (;;) {
      skip();
      if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return;
      Expr::Op op = text[pos] == '+' ? Expr::Op::kAdd : Expr::Op::kSub;
      ++pos;
      term();
      out.toks.push_back({op, Value(), -1});
    }
  };
  expr();
  skip();
  if (pos != text.size()) err(fmt::format("unexpected '{}'", text[pos]));
  if (symbolic && out.toks.size() > kMaxExprTokens) {
    err(fmt::format("expected at most {} terms in an expression that depends on a choice "
                    "(parameters expanded), found more", kMaxExprTokens));
  }
  // Fold constant expressions now, so that evaluation is a lookup.
  if (out.is_const() && out.toks.size() > 1) {
    try {
      out = Expr::constant(eval_expr(out, impl_->decisions, nullptr));
    } catch (const InvalidArgument& e) {
      fail(path, fmt::format("bad expression \"{}\": {}", text, e.what()));
    }
  }
  return out;
}

int Parser::declare_decision(std::string name, DecisionKind kind, std::vector<Value> options,
                             const std::string& path, bool named) {
  if (options.empty()) fail(path, "expected a non-empty list of options, found []");
  if (options.size() > kMaxOptions) {
    fail(path, fmt::format("expected at most {} options, found {}", kMaxOptions, options.size()));
  }
  // Duplicates, numerically equal numbers included (1 and 1.0 name the same option), in
  // O(n log n): the first repeated option is reported, with the index of its first occurrence.
  std::vector<std::size_t> order(options.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return compare_options(options[x], options[y]) < 0;
  });
  std::size_t dup = options.size(), first = 0;
  for (std::size_t r = 1; r < order.size(); ++r) {
    // Runs of equal options are in index order (stable sort); order[r] repeats the run's head.
    if (compare_options(options[order[r - 1]], options[order[r]]) == 0 &&
        (r == 1 || compare_options(options[order[r - 2]], options[order[r - 1]]) != 0) &&
        order[r] < dup) {
      dup = order[r];
      first = order[r - 1];
    }
  }
  if (dup < options.size()) {
    fail(index(path, dup), fmt::format("duplicate option {} (also at index {})", options[dup].repr(), first));
  }
  auto it = decision_by_name_.find(name);
  if (it != decision_by_name_.end()) {
    const Decision& d = impl_->decisions[it->second];
    if (!named || !named_[it->second]) {
      fail(path, fmt::format("decision name \"{}\" is already used at {}", name, d.path));
    }
    if (d.kind != kind || d.options != options) {
      std::vector<std::string> a, b;
      for (const auto& v : d.options) a.push_back(v.repr());
      for (const auto& v : options) b.push_back(v.repr());
      fail(path, fmt::format("shared choice \"{}\" has conflicting options: [{}] ({}) at {}, "
                             "but [{}] ({}) here",
                             name, fmt::join(a, ", "), decision_kind_name(d.kind), d.path,
                             fmt::join(b, ", "), decision_kind_name(kind)));
    }
    return it->second;
  }
  total_options_ += options.size();
  if (total_options_ > kMaxTotalOptions) {
    fail(path, fmt::format("expected at most {} options over all decisions, found more", kMaxTotalOptions));
  }
  int id = static_cast<int>(impl_->decisions.size());
  impl_->decisions.push_back(Decision{name, kind, std::move(options), path, false});
  named_.push_back(named);
  scope_of_.push_back(-2);
  decision_by_name_.emplace(std::move(name), id);
  return id;
}

void Parser::touch_decision(int d) {
  int& s = scope_of_[d];
  if (s == -2) s = current_scope_;
  else if (s != current_scope_) s = -1;
}

void Parser::touch(const Expr& e) {
  for (const auto& t : e.toks) {
    if (t.op == Expr::Op::kRef) touch_decision(t.decision);
  }
}

Expr Parser::parse_value(const json& j, const std::string& path, bool allow_choice,
                         DecisionKind kind, const std::string& auto_name) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(
                                                                std::numeric_limits<std::int64_t>::max())) {
      fail(path, fmt::format("integer {} is too large", j.dump()));
    }
    return Expr::constant(Value(j.get<std::int64_t>()));
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (!std::isfinite(d)) fail(path, "expected a finite number");
    return Expr::constant(Value(d));
  }
  if (j.is_boolean()) return Expr::constant(Value(j.get<bool>()));
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s.find('$') != std::string::npos) {
      Expr e = parse_expression(s, path);
      touch(e);
      return e;
    }
    return Expr::constant(Value(s));
  }
  if (j.is_object() && j.contains("choice")) {
    if (!allow_choice) fail(path, "a choice is not allowed here (expected a fixed value)");
    expect_keys(j, path, {"choice", "name"});
    const json& opts = j["choice"];
    if (!opts.is_array()) {
      fail(child(path, "choice"), fmt::format("expected an array of options, found {} {}",
                                              type_name(opts), preview(opts)));
    }
    std::vector<Value> options;
    for (std::size_t i = 0; i < opts.size(); ++i) {
      const json& o = opts[i];
      std::string op = index(child(path, "choice"), i);
      if (!(o.is_number() || o.is_string() || o.is_boolean())) {
        fail(op, fmt::format("expected a number, string or boolean option, found {} {}",
                             type_name(o), preview(o)));
      }
      Value v = eval_const(parse_value(o, op, false), op);
      if (!options.empty() && (options[0].is_number() != v.is_number() ||
                               options[0].is_string() != v.is_string())) {
        fail(op, fmt::format("options of one choice must be of one kind: option 0 is {} {}, "
                             "this one is {} {}",
                             options[0].kind_name(), options[0].repr(), v.kind_name(), v.repr()));
      }
      options.push_back(std::move(v));
    }
    bool named = j.contains("name");
    std::string name = named ? const_string(j["name"], child(path, "name")) : auto_name;
    if (named && name.empty()) fail(child(path, "name"), "expected a non-empty name");
    if (name.empty()) name = path;
    int d = declare_decision(name, kind, std::move(options), child(path, "choice"), named);
    touch_decision(d);
    return Expr::ref(d);
  }
  fail(path, fmt::format("expected a number, string, boolean{}, found {} {}",
                         allow_choice ? " or {\"choice\": [...]}" : "", type_name(j), preview(j)));
}

// ---- params -------------------------------------------------------------------------------

void Parser::parse_params(const json& j) {
  if (!j.is_object()) fail("params", fmt::format("expected an object, found {}", type_name(j)));
  in_params_ = true;
  // Overrides must name declared parameters.
  for (const auto& [k, _] : overrides_) {
    if (!j.contains(k)) {
      std::vector<std::string> names;
      for (const auto& [n, __] : j.items()) names.push_back(n);
      fail("params", fmt::format("cannot set unknown parameter \"{}\"; the space declares: {}", k,
                                 fmt::join(names, ", ")));
    }
  }
  for (const auto& [k, v0] : j.items()) {
    std::string path = child("params", k);
    if (k.empty() || !std::all_of(k.begin(), k.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      fail(path, fmt::format("expected a parameter name of letters, digits and '_', found \"{}\"", k));
    }
    json v = v0;
    auto ov = overrides_.find(k);
    if (ov != overrides_.end()) {
      path = fmt::format("--set {}", k);
      v = json::parse(ov->second, nullptr, false);
      if (v.is_discarded()) v = ov->second;  // bare text is a string
    }
    ParamVal pv;
    if (v.is_array()) {
      pv.is_list = true;
      if (v.empty() || v.size() > 8) fail(path, fmt::format("expected a list of 1 to 8 values, found {}", v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) {
        pv.list.push_back(parse_value(v[i], index(path, i), true, DecisionKind::kValue, index(k, i)));
      }
    } else {
      pv.scalar = parse_value(v, path, true, DecisionKind::kValue, k);
    }
    // An override given as bare text may hold any bytes; dump() would throw on invalid UTF-8.
    impl_->params.emplace_back(k, v.dump(-1, ' ', false, json::error_handler_t::replace));
    params_.emplace_back(k, std::move(pv));
  }
  in_params_ = false;
  // A param's own choice is used where the param is referenced, not where it is declared.
  for (auto& s : scope_of_) s = -2;
}

// ---- ops ----------------------------------------------------------------------------------

std::vector<Attr> Parser::parse_attrs(const json& j, const std::string& path, const OpDef* def,
                                      const std::string& name,
                                      std::initializer_list<const char*> skip) {
  std::vector<Attr> attrs;
  for (const auto& kv : j.items()) {
    const std::string& k = kv.key();  // not a structured binding: clang < 16 cannot capture one
    const json& v = kv.value();
    if (std::any_of(skip.begin(), skip.end(), [&](const char* s) { return k == s; })) continue;
    std::string p = child(path, k);
    const AttrDef* ad = def ? def->find_attr(k) : nullptr;
    if (def && !ad) {
      std::vector<std::string> names;
      for (const auto& a : def->attrs) names.push_back(a.name);
      fail(p, fmt::format("unknown attribute \"{}\" for op \"{}\"; expected one of: {}", k,
                          def->name, names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "))));
    }
    Expr e = parse_value(v, p, true, DecisionKind::kValue, child(name, k));
    if (ad) {
      // Type-check every value this attribute can take now, so a bad option fails at parse.
      std::vector<Value> values;
      if (e.is_const()) values.push_back(eval_const(e, p));
      else if (e.toks.size() == 1) values = impl_->decisions[e.toks[0].decision].options;
      for (const auto& val : values) {
        bool ok = false;
        switch (ad->type) {
          case AttrType::kInt:
            ok = val.is_int() || (val.is_double() && std::floor(val.as_double()) == val.as_double());
            break;
          case AttrType::kNumber: ok = val.is_number(); break;
          case AttrType::kBool: ok = val.is_bool(); break;
          case AttrType::kString: ok = val.is_string(); break;
        }
        if (!ok) {
          fail(p, fmt::format("expected {} for {}.{}, found {} {}", attr_type_name(ad->type),
                              def->name, k, val.kind_name(), val.repr()));
        }
        if (ad->type == AttrType::kInt && val.is_number() &&
            (val.as_double() < -1 || val.as_double() > static_cast<double>(1 << 24))) {
          fail(p, fmt::format("expected {}.{} in [-1, {}], found {}", def->name, k, 1 << 24, val.repr()));
        }
      }
    }
    attrs.push_back(Attr{k, std::move(e), p});
  }
  return attrs;
}

OpTemplate Parser::parse_op(const json& j, const std::string& path, const std::string& label,
                            bool in_library, bool need_required,
                            const std::set<std::string>& injected, const std::string& name) {
  if (!j.is_object()) fail(path, fmt::format("expected an op object {{\"type\": ...}}, found {} {}", type_name(j), preview(j)));
  const json& t = require(j, "type", path);
  std::string type = const_string(t, child(path, "type"));
  if (!has_op(type)) {
    fail(child(path, "type"), fmt::format("unknown op \"{}\"; known ops: {}", type, fmt::join(op_names(), ", ")));
  }
  OpTemplate op;
  op.type = type;
  op.def = &find_op(type);
  if (op.def->internal) {
    fail(child(path, "type"), fmt::format("op \"{}\" is internal to supernets and cannot be used in a space", type));
  }
  op.path = path;
  op.label = label;
  if (in_library) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_object() && v.contains("choice")) {
        fail(child(path, k), "a choice is not allowed in the op library; put it where the op is used");
      }
    }
  }
  op.attrs = parse_attrs(j, path, op.def, name.empty() ? path : name, {"type", "name"});
  if (need_required) {
    for (const auto& ad : op.def->attrs) {
      if (ad.fallback) continue;
      bool set = std::any_of(op.attrs.begin(), op.attrs.end(), [&](const Attr& a) { return a.key == ad.name; });
      if (!set && !injected.count(ad.name)) {
        fail(path, fmt::format("op \"{}\" needs attribute \"{}\" ({})", type, ad.name, ad.doc));
      }
    }
  }
  return op;
}

void Parser::parse_ops(const json& j) {
  if (!j.is_object()) fail("ops", fmt::format("expected an object of named ops, found {}", type_name(j)));
  for (const auto& [k, v] : j.items()) {
    library_.emplace(k, parse_op(v, child("ops", k), k, true, false, {}));
    library_weight_[k] = json_weight(v);
  }
}

std::vector<OpTemplate> Parser::parse_op_list(const json& j, const std::string& path,
                                              const std::set<std::string>& injected,
                                              const std::vector<Attr>* shared) {
  if (!j.is_array() || j.empty()) {
    fail(path, fmt::format("expected a non-empty array of op names, found {}", preview(j)));
  }
  if (j.size() > kMaxOptions) fail(path, "too many ops");
  std::vector<OpTemplate> ops;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < j.size(); ++i) {
    std::string p = index(path, i);
    OpTemplate op;
    if (j[i].is_string()) {
      std::string name = j[i].get<std::string>();
      auto it = library_.find(name);
      if (it == library_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, _] : library_) names.push_back(n);
        fail(p, fmt::format("unknown op \"{}\"; the space's \"ops\" define: {}", name,
                            names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "))));
      }
      op = it->second;
      charge(p, library_weight_[name]);  // a label copies the whole template
    } else if (j[i].is_object()) {
      if (!j[i].contains("name")) fail(p, "an inline op in a list needs a \"name\"");
      std::string name = const_string(j[i]["name"], child(p, "name"));
      op = parse_op(j[i], p, name, true, false, {});
    } else {
      fail(p, fmt::format("expected an op name or an op object, found {} {}", type_name(j[i]), preview(j[i])));
    }
    if (!seen.insert(op.label).second) fail(p, fmt::format("duplicate op \"{}\"", op.label));
    // Required attributes must come from the template, the shared attributes or injection.
    for (const auto& ad : op.def->attrs) {
      if (ad.fallback) continue;
      auto has = [&](const std::vector<Attr>& as) {
        return std::any_of(as.begin(), as.end(), [&](const Attr& a) { return a.key == ad.name; });
      };
      if (!has(op.attrs) && !(shared && has(*shared)) && !injected.count(ad.name)) {
        fail(p, fmt::format("op \"{}\" ({}) needs attribute \"{}\" ({})", op.label, op.type, ad.name, ad.doc));
      }
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

// ---- network items ------------------------------------------------------------------------

void Parser::parse_items(const json& arr, const std::string& path, const std::string& name,
                         std::vector<Item>& out, int depth) {
  if (!arr.is_array()) fail(path, fmt::format("expected an array of layers, found {} {}", type_name(arr), preview(arr)));
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const json& j = arr[i];
    std::string p = index(path, i), n = index(name, i);
    if (j.is_object() && j.contains("type") && j["type"] == "repeat") {
      if (depth >= kMaxNesting) fail(p, fmt::format("nesting deeper than {} levels", kMaxNesting));
      expect_keys(j, p, {"type", "count", "body"});
      std::int64_t count = const_int(require(j, "count", p), child(p, "count"), 0, kMaxRepeat);
      const json& body = require(j, "body", p);
      const std::size_t weight = json_weight(body) + 1;  // an empty body still costs
      for (std::int64_t r = 0; r < count; ++r) {
        charge(p, weight);
        parse_items(body, child(p, "body"), fmt::format("{}.r{}", n, r), out, depth + 1);
      }
      continue;
    }
    out.push_back(parse_item(j, p, n, depth));
  }
}

Item Parser::parse_item(const json& j, const std::string& path, const std::string& name, int depth) {
  charge_layers(path, 1);
  if (!j.is_object()) fail(path, fmt::format("expected a layer object {{\"type\": ...}}, found {} {}", type_name(j), preview(j)));
  const json& t = require(j, "type", path);
  std::string type = const_string(t, child(path, "type"));
  if (type == "stage") return parse_stage(j, path, name, depth);
  if (type == "cell") return parse_cell(j, path, name);
  if (type == "choose") return parse_choose(j, path, name);
  if (type == "repeat") fail(path, "a repeat is not allowed here (only in a list of layers)");
  if (j.contains("name")) {
    fail(child(path, "name"), fmt::format("\"name\" names cells, chooses and choices; op \"{}\" takes no name", type));
  }
  Item item;
  item.kind = Item::Kind::kOp;
  item.path = path;
  item.name = name;
  item.op = parse_op(j, path, "", false, true, {}, name);
  return item;
}

Item Parser::parse_stage(const json& j, const std::string& path, const std::string& name, int) {
  expect_keys(j, path, {"type", "depth", "block"});
  Item item;
  item.kind = Item::Kind::kStage;
  item.path = path;
  item.name = name;
  std::string dpath = child(path, "depth");
  Expr depth = parse_value(require(j, "depth", path), dpath, true, DecisionKind::kDepth, child(name, "depth"));
  std::int64_t max_depth = 0;
  if (depth.is_const()) {
    max_depth = const_int(j["depth"], dpath, 0, kMaxDepth);
  } else if (depth.toks.size() == 1) {
    item.decision = depth.toks[0].decision;
    Decision& d = impl_->decisions[item.decision];
    if (d.kind != DecisionKind::kDepth) {
      fail(dpath, fmt::format("a stage depth must be a choice of its own (kind depth), found the "
                              "{} choice \"{}\"",
                              decision_kind_name(d.kind), d.name));
    }
    for (std::size_t i = 0; i < d.options.size(); ++i) {
      const Value& v = d.options[i];
      if (!v.is_int() || v.as_int() < 0 || v.as_int() > kMaxDepth) {
        fail(index(child(dpath, "choice"), i), fmt::format("expected a depth in [0, {}], found {}", kMaxDepth, v.repr()));
      }
      max_depth = std::max(max_depth, v.as_int());
    }
  } else {
    fail(dpath, "expected a fixed depth or {\"choice\": [...]}, found an expression of choices");
  }
  const json& block = require(j, "block", path);
  if (block.is_object() && block.contains("type") &&
      (block["type"] == "stage" || block["type"] == "cell" || block["type"] == "repeat")) {
    fail(child(path, "block.type"), "a stage block must be an op or a choose");
  }
  const int parent_scope = current_scope_;
  const std::size_t weight = json_weight(block);
  for (std::int64_t b = 0; b < max_depth; ++b) {
    charge(child(path, "block"), weight);
    if (item.decision >= 0) {
      current_scope_ = static_cast<int>(scopes_.size());
      scopes_.push_back(Scope{Owner{Owner::Kind::kStageBlock, item.decision, static_cast<int>(b)}});
    }
    Item blk = parse_item(block, child(path, "block"), index(child(name, "block"), b), 0);
    blk.force_stride_one = b > 0;
    item.blocks.push_back(std::move(blk));
    current_scope_ = parent_scope;
  }
  return item;
}

Item Parser::parse_choose(const json& j, const std::string& path, const std::string& name) {
  Item item;
  item.kind = Item::Kind::kChoose;
  item.path = path;
  item.name = name;
  item.shared = parse_attrs(j, path, nullptr, name, {"type", "options", "name"});
  item.options = parse_op_list(require(j, "options", path), child(path, "options"), {}, &item.shared);
  // Each shared attribute must be accepted by at least one option (else it is a typo).
  for (const auto& a : item.shared) {
    if (std::none_of(item.options.begin(), item.options.end(),
                     [&](const OpTemplate& o) { return o.def->find_attr(a.key) != nullptr; })) {
      fail(a.path, fmt::format("no option of this choose accepts attribute \"{}\"", a.key));
    }
  }
  std::vector<Value> labels;
  for (const auto& o : item.options) labels.emplace_back(o.label);
  bool named = j.contains("name");
  std::string dname = named ? const_string(j["name"], child(path, "name")) : name;
  item.decision = declare_decision(dname, DecisionKind::kOp, std::move(labels), child(path, "options"), named);
  touch_decision(item.decision);
  return item;
}

Item Parser::parse_cell(const json& j, const std::string& path, const std::string& name) {
  expect_keys(j, path, {"type", "name", "inputs", "nodes", "node_inputs", "ops", "reduction",
                        "preprocess", "output", "channels"});
  Item item;
  item.kind = Item::Kind::kCell;
  item.path = path;
  item.name = name;
  if (j.contains("channels")) {
    item.channels = parse_value(j["channels"], child(path, "channels"), true, DecisionKind::kValue,
                                child(name, "channels"));
  }
  bool named = j.contains("name");
  std::string cname = named ? const_string(j["name"], child(path, "name")) : name;
  if (cname.empty()) fail(child(path, "name"), "expected a non-empty cell name");
  json structure = j;
  structure.erase("channels");
  std::string text = structure.dump();
  if (auto it = cells_.find(cname); it != cells_.end()) {
    if (it->second->structure != text) {
      fail(path, fmt::format("cell \"{}\" is declared again with a different structure (first at "
                             "{}); tied cells must be identical except for \"channels\"",
                             cname, it->second->path));
    }
    item.cell = it->second;
    charge_layers(path, cell_layers(*it->second) - 1);  // parse_item counted one
    // Tied decisions are used in this scope too.
    for (const auto& e : it->second->edges) touch_decision(e.decision);
    for (int d : it->second->input_decision) if (d >= 0) touch_decision(d);
    return item;
  }
  auto cell = std::make_shared<CellStruct>();
  cell->name = cname;
  cell->structure = text;
  cell->path = path;
  cell->inputs = static_cast<int>(j.contains("inputs") ? const_int(j["inputs"], child(path, "inputs"), 1, 2) : 1);
  cell->nodes = static_cast<int>(const_int(require(j, "nodes", path), child(path, "nodes"), 1, kMaxCellNodes));
  cell->node_inputs = static_cast<int>(j.contains("node_inputs") ? const_int(j["node_inputs"], child(path, "node_inputs"), 0, kMaxCellNodes) : 0);
  cell->reduction = j.contains("reduction") && const_bool(j["reduction"], child(path, "reduction"));
  cell->preprocess = j.contains("preprocess") ? const_bool(j["preprocess"], child(path, "preprocess")) : cell->inputs == 2;
  std::string output = j.contains("output") ? const_string(j["output"], child(path, "output")) : (cell->inputs == 2 ? "concat" : "last");
  if (output != "last" && output != "concat") {
    fail(child(path, "output"), fmt::format("expected \"last\" or \"concat\", found \"{}\"", output));
  }
  cell->concat_output = output == "concat";
  if (cell->node_inputs > cell->inputs) {
    fail(child(path, "node_inputs"), fmt::format("expected at most {} (node 0 has only {} possible inputs), found {}",
                                                 cell->inputs, cell->inputs, cell->node_inputs));
  }
  cell->ops = parse_op_list(require(j, "ops", path), child(path, "ops"), {"out", "stride"}, nullptr);
  std::vector<Value> labels;
  for (const auto& o : cell->ops) labels.emplace_back(o.label);
  cell->input_decision.assign(cell->nodes, -1);
  cell->subsets.resize(cell->nodes);
  for (int i = 0; i < cell->nodes; ++i) {
    int preds = cell->inputs + i;
    if (cell->node_inputs > 0 && cell->node_inputs < preds) {
      // Every k-subset of the predecessors, in lexicographic order.
      std::vector<std::vector<int>> subsets;
      std::vector<int> cur;
      std::function<void(int)> rec = [&](int start) {
        if (static_cast<int>(cur.size()) == cell->node_inputs) {
          subsets.push_back(cur);
          return;
        }
        for (int s = start; s < preds; ++s) {
          cur.push_back(s);
          rec(s + 1);
          cur.pop_back();
        }
      };
      rec(0);
      if (subsets.size() > kMaxOptions) fail(child(path, "node_inputs"), "too many input subsets");
      std::vector<Value> names;
      for (const auto& s : subsets) names.emplace_back(fmt::format("{}", fmt::join(s, "+")));
      cell->subsets[i] = subsets;
      cell->input_decision[i] = declare_decision(fmt::format("{}.node[{}].inputs", cname, i), DecisionKind::kInputs,
                                                 std::move(names), child(path, "node_inputs"), false);
      touch_decision(cell->input_decision[i]);
    }
    for (int s = 0; s < preds; ++s) {
      int e = static_cast<int>(cell->edges.size());
      int d = declare_decision(fmt::format("{}.edge[{}]", cname, e), DecisionKind::kOp, labels,
                               child(path, "ops"), false);
      touch_decision(d);
      cell->edges.push_back({s, i, d});
    }
  }
  cells_.emplace(cname, cell);
  charge_layers(path, cell_layers(*cell) - 1);  // parse_item counted one
  item.cell = cell;
  return item;
}

void Parser::parse_native(const json& j) {
  if (!j.is_object()) fail("native", fmt::format("expected an object, found {}", type_name(j)));
  expect_keys(j, "native", {"format", "cell"});
  std::string format = const_string(require(j, "format", "native"), "native.format");
  if (format == "nb201") {
    std::string cname = const_string(require(j, "cell", "native"), "native.cell");
    auto it = cells_.find(cname);
    if (it == cells_.end()) fail("native.cell", fmt::format("no cell named \"{}\" in the network", cname));
    if (it->second->inputs != 1 || it->second->node_inputs != 0) {
      fail("native.cell", "the nb201 format needs a cell with 1 input and all node inputs kept");
    }
    // '|' and '+' separate edges and nodes in the string: a label holding one cannot be read back.
    for (const auto& op : it->second->ops) {
      if (op.label.find_first_of("|+") != std::string::npos) {
        fail("native.cell", fmt::format("expected op labels without '|' or '+' for the nb201 format, "
                                        "found \"{}\" in the ops of cell \"{}\"", op.label, cname));
      }
    }
    impl_->native.cell = it->second;
  } else if (format == "op_list") {
    if (j.contains("cell")) fail("native.cell", "the op_list format takes no cell");
  } else {
    fail("native.format", fmt::format("expected \"nb201\" or \"op_list\", found \"{}\"", format));
  }
  impl_->native.format = format;
  // A native string must name the whole architecture: every decision with a real choice has
  // to be one the format writes.
  std::set<int> covered;
  if (format == "nb201") {
    for (const auto& e : impl_->native.cell->edges) covered.insert(e.decision);
  } else {
    for (std::size_t d = 0; d < impl_->decisions.size(); ++d) {
      if (impl_->decisions[d].kind == DecisionKind::kOp) covered.insert(static_cast<int>(d));
    }
  }
  for (std::size_t d = 0; d < impl_->decisions.size(); ++d) {
    if (!covered.count(static_cast<int>(d)) && impl_->decisions[d].options.size() > 1) {
      fail("native", fmt::format("the {} format cannot express decision \"{}\" (at {}); drop \"native\" "
                                 "or make that value fixed",
                                 format, impl_->decisions[d].name, impl_->decisions[d].path));
    }
  }
}

std::shared_ptr<SpaceImpl> Parser::run(std::string_view text) {
  json doc;
  try {
    // Copying, comparing and dumping a json value recurse once per nesting level, so the depth
    // is bounded here, before anything else touches the document.
    const json::parser_callback_t limit_depth = [this](int depth, json::parse_event_t event, json&) {
      if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
          depth >= kMaxJsonDepth) {
        fail("", fmt::format("expected JSON nested at most {} levels deep, found deeper nesting", kMaxJsonDepth));
      }
      return true;
    };
    doc = json::parse(text.begin(), text.end(), limit_depth, true, /*ignore_comments=*/true);
  } catch (const json::out_of_range& e) {
    // A number too large for a double ("1e400"): valid JSON syntax, but not representable.
    std::string msg = e.what();
    const std::string tag = "number overflow parsing ";
    if (auto p = msg.find(tag); p != std::string::npos) msg = msg.substr(p + tag.size());
    fail("", fmt::format("expected JSON numbers within the range of a double, found {}", msg));
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line and column.
    std::size_t off = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(off), '\n');
    std::size_t nl = text.rfind('\n', off == 0 ? 0 : off - 1);
    std::size_t col = off - (nl == std::string_view::npos ? 0 : nl + 1) + 1;
    std::string msg = e.what();
    if (auto p = msg.find("syntax error"); p != std::string::npos) msg = msg.substr(p);
    fail("", fmt::format("JSON syntax error at line {}, column {}: {}", line, col, msg));
  }
  if (!doc.is_object()) fail("", fmt::format("expected a JSON object at the top level, found {}", type_name(doc)));
  expect_keys(doc, "", {"name", "description", "params", "ops", "network", "native"});
  {
    json rest = doc;
    rest.erase("params");
    rest.erase("description");
    document_ = rest.dump();
  }
  impl_->name = doc.contains("name") ? const_string(doc["name"], "name") : impl_->origin;
  impl_->description = doc.contains("description") ? const_string(doc["description"], "description") : "";
  if (doc.contains("params")) parse_params(doc["params"]);
  else if (!overrides_.empty()) fail("params", fmt::format("cannot set \"{}\": the space declares no parameters", overrides_.begin()->first));
  // The input shape.
  auto in = std::find_if(params_.begin(), params_.end(), [](const auto& p) { return p.first == "input"; });
  if (in == params_.end() || !in->second.is_list) {
    fail("params.input", "expected the parameter \"input\": the input shape without batch, e.g. [3, 32, 32]");
  }
  current_scope_ = -1;
  for (const auto& e : in->second.list) touch(e);
  impl_->input_shape = in->second.list;
  if (doc.contains("ops")) parse_ops(doc["ops"]);
  parse_items(require(doc, "network", ""), "network", "network", impl_->network, 0);
  if (impl_->network.empty()) fail("network", "expected at least one layer, found []");
  if (doc.contains("native")) parse_native(doc["native"]);
  finish();
  return impl_;
}

void Parser::finish() {
  auto& sp = *impl_;
  const auto n = sp.decisions.size();
  sp.owners.assign(n, Owner{});
  for (std::size_t d = 0; d < n; ++d) {
    int s = scope_of_[d];
    if (s >= 0) {
      sp.owners[d] = scopes_[s].owner;
      sp.decisions[d].conditional = true;
    }
  }
  sp.input_masks.assign(n, {});
  for (const auto& [_, cell] : cells_) {
    for (int i = 0; i < cell->nodes; ++i) {
      int d = cell->input_decision[i];
      if (d < 0) continue;
      for (const auto& subset : cell->subsets[i]) {
        std::uint64_t mask = 0;
        for (int src : subset) mask |= std::uint64_t{1} << src;
        sp.input_masks[d].push_back(mask);
      }
    }
    for (const auto& e : cell->edges) {
      int by = cell->input_decision[e.dst];
      if (by >= 0) {  // edge decisions are the cell's own (auto-named, never shared)
        sp.owners[e.decision] = Owner{Owner::Kind::kCellEdge, by, e.src};
        sp.decisions[e.decision].conditional = true;
      }
    }
  }
  for (std::size_t d = 0; d < n; ++d) {
    if (sp.owners[d].kind != Owner::Kind::kGlobal) sp.conditional = true;
    if (sp.decisions[d].kind == DecisionKind::kOp) sp.op_decisions.push_back(static_cast<int>(d));
  }
  sp.onehot_offset.resize(n);
  for (std::size_t d = 0; d < n; ++d) {
    sp.onehot_offset[d] = sp.onehot_size;
    sp.onehot_size += sp.decisions[d].options.size();
  }

  // Exact size: global decisions multiply; each depth decision contributes the sum over its
  // options of the product of the blocks it keeps; each input decision the sum over its subsets
  // of the product of the edges it keeps.
  BigUint total(1);
  std::map<int, std::vector<int>> owned;  // controlling decision -> owned decisions
  for (std::size_t d = 0; d < n; ++d) {
    if (sp.owners[d].kind != Owner::Kind::kGlobal) owned[sp.owners[d].by].push_back(static_cast<int>(d));
  }
  // Small factors are gathered in 64 bits before they touch a big integer: a space can have tens
  // of thousands of decisions.
  auto mul_small = [](BigUint& big, std::uint64_t& acc, std::uint64_t f) {
    if (acc > std::numeric_limits<std::uint64_t>::max() / f) {
      big.mul(acc);
      acc = 1;
    }
    acc *= f;
  };
  std::uint64_t total_acc = 1;
  for (std::size_t d = 0; d < n; ++d) {
    if (sp.owners[d].kind != Owner::Kind::kGlobal) continue;
    auto it = owned.find(static_cast<int>(d));
    if (it == owned.end()) {
      mul_small(total, total_acc, sp.decisions[d].options.size());
      continue;
    }
    BigUint sum(0);
    if (sp.decisions[d].kind == DecisionKind::kDepth) {
      // The active blocks are those below the chosen depth, a prefix: walk the depths in order,
      // extending one running product (quadratic work per option would not scale to 1,000 blocks).
      std::vector<int> by_block = it->second;
      std::stable_sort(by_block.begin(), by_block.end(),
                       [&](int x, int y) { return sp.owners[x].index < sp.owners[y].index; });
      std::vector<std::int64_t> depths;
      for (const auto& v : sp.decisions[d].options) depths.push_back(v.as_int());
      std::sort(depths.begin(), depths.end());
      BigUint prefix(1);
      std::uint64_t prefix_acc = 1;
      std::size_t next = 0;
      for (std::int64_t depth : depths) {
        for (; next < by_block.size() && sp.owners[by_block[next]].index < depth; ++next) {
          mul_small(prefix, prefix_acc, sp.decisions[by_block[next]].options.size());
        }
        BigUint term = prefix;
        term.mul(prefix_acc);
        sum.add(term);
      }
      total.mul(sum);
      continue;
    }
    for (std::size_t o = 0; o < sp.decisions[d].options.size(); ++o) {
      BigUint term(1);
      for (int od : it->second) {
        const Owner& ow = sp.owners[od];
        bool active = false;
        if (ow.kind == Owner::Kind::kStageBlock) {
          active = sp.decisions[d].options[o].as_int() > ow.index;
        } else {
          active = (sp.input_masks[d][o] >> ow.index) & 1U;
        }
        if (active) term.mul(sp.decisions[od].options.size());
      }
      sum.add(term);
    }
    total.mul(sum);
  }
  total.mul(total_acc);
  sp.size.exact = total.to_string();
  sp.size.log10 = total.log10();
  sp.size.value = total.to_u64();

  // Fingerprint: FNV-1a of the document with the overrides applied (params as resolved).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    h ^= 0xff;
    h *= 0x100000001b3ULL;
  };
  for (const auto& [k, v] : sp.params) mix(k + "=" + v);
  mix(document_);
  sp.fingerprint = fmt::format("{:016x}", h);
}

}  // namespace

std::shared_ptr<SpaceImpl> parse_space(std::string_view text, const ParamOverrides& overrides,
                                       const std::string& origin) {
  Parser p(origin, overrides);
  return p.run(text);
}

}  // namespace nasforge::detail
