#pragma once
// Private representation of a parsed search space: the typed tree the DSL compiles to.
// Parsing (search_space_parse.cpp) builds it once; everything else (search_space.cpp) reads it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nasforge/architecture.h"
#include "nasforge/ops.h"
#include "nasforge/search_space.h"
#include "nasforge/value.h"

namespace nasforge::detail {

// An expression in reverse Polish notation over constants and decision references.
struct Expr {
  enum class Op : std::uint8_t { kConst, kRef, kAdd, kSub, kMul, kDiv, kFloorDiv, kNeg };
  struct Tok {
    Op op = Op::kConst;
    Value value;        // kConst
    int decision = -1;  // kRef
  };
  std::vector<Tok> toks;

  bool empty() const { return toks.empty(); }
  bool is_const() const {
    for (const auto& t : toks) {
      if (t.op == Op::kRef) return false;
    }
    return true;
  }
  static Expr constant(Value v) {
    Expr e;
    e.toks.push_back({Op::kConst, std::move(v), -1});
    return e;
  }
  static Expr ref(int decision) {
    Expr e;
    e.toks.push_back({Op::kRef, Value(), decision});
    return e;
  }
};

// Evaluates `e`; `arch` may be null only for constant expressions. Throws InvalidArgument on
// type errors (e.g. a string in arithmetic, division by zero).
Value eval_expr(const Expr& e, const std::vector<Decision>& decisions, const Architecture* arch);

// Orders option values: numbers by exact value (an integer and a real that are the same number
// compare equal: 4 and 4.0), then booleans, then strings. Returns -1, 0 or 1.
int compare_options(const Value& a, const Value& b);

struct Attr {
  std::string key;
  Expr value;
  std::string path;  // JSON path of the value
};

// An op with (possibly decision-dependent) attributes.
struct OpTemplate {
  std::string type;
  const OpDef* def = nullptr;
  std::vector<Attr> attrs;
  std::string path;   // JSON path of the op object
  std::string label;  // option name when it comes from a named list, else empty
};

// The structure of a cell; tied cells (same name) share one.
struct CellStruct {
  std::string name;
  int inputs = 1;
  int nodes = 1;
  int node_inputs = 0;  // 0: every node takes all its predecessors
  bool reduction = false;
  bool preprocess = false;
  bool concat_output = false;
  std::vector<OpTemplate> ops;
  struct Edge {
    int src;       // 0..inputs-1 are cell inputs, inputs + i is intermediate node i
    int dst;       // intermediate node index
    int decision;  // op decision
  };
  std::vector<Edge> edges;                                 // node-major, source-minor
  std::vector<int> input_decision;                         // per node, -1: all predecessors
  std::vector<std::vector<std::vector<int>>> subsets;      // per node: option -> sources
  std::string structure;                                   // canonical text, to check ties
  std::string path;                                        // first declaration
};

struct Item {
  enum class Kind { kOp, kChoose, kCell, kStage } kind = Kind::kOp;
  std::string path;  // JSON path
  std::string name;  // concrete name prefix, e.g. network[3].block[1]
  // kOp
  OpTemplate op;
  // kChoose: decision indexes `options`; kStage: depth decision (-1: fixed depth)
  int decision = -1;
  std::vector<OpTemplate> options;
  std::vector<Attr> shared;
  // kCell
  std::shared_ptr<const CellStruct> cell;
  Expr channels;  // empty: the channels of the cell's (last) input
  // kStage
  std::vector<Item> blocks;
  bool force_stride_one = false;  // a stage block after the first
};

// Who decides whether a decision is active.
struct Owner {
  enum class Kind { kGlobal, kStageBlock, kCellEdge } kind = Kind::kGlobal;
  int by = -1;     // kStageBlock: the depth decision; kCellEdge: the node's input decision
  int index = -1;  // kStageBlock: block index; kCellEdge: source node of the edge
};

struct NativeFormat {
  std::string format;  // "", "nb201", "op_list"
  std::shared_ptr<const CellStruct> cell;  // nb201
};

struct SpaceImpl {
  std::string origin;
  std::string name;
  std::string description;
  std::vector<std::pair<std::string, std::string>> params;
  std::string fingerprint;
  std::vector<Decision> decisions;
  std::vector<Owner> owners;           // per decision
  std::vector<std::size_t> onehot_offset;  // per decision
  std::size_t onehot_size = 0;
  bool conditional = false;
  std::vector<Expr> input_shape;
  std::vector<Item> network;
  NativeFormat native;
  SpaceSize size;
  std::vector<int> op_decisions;  // kOp decisions, in order (op_list native format)
  // kInputs decisions: per option, the bit mask of the sources it keeps (empty otherwise).
  std::vector<std::vector<std::uint64_t>> input_masks;
};

// Parses DSL text into a SpaceImpl (validates everything that can be checked statically).
std::shared_ptr<SpaceImpl> parse_space(std::string_view text, const ParamOverrides& overrides,
                                       const std::string& origin);

}  // namespace nasforge::detail
