// Python bindings of the diffusion kernels (diffusion.h), called by src/genofast/ops/diffusion.py:
// numpy arrays in, preallocated outputs, no allocation here. nanobind checks dtypes, dimensions
// and contiguity (noconvert: nothing is copied or cast silently); shapes are checked here
// (ValueError). Value ranges (alpha, pi, row ids, seed, offset) are checked by diffusion.py. The
// kernels run with the GIL released and use OpenMP inside. bfloat16 logits arrive as their int16
// bits (numpy has no bfloat16) and are widened in the kernel.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

#include "diffusion.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

template <typename T, size_t D>
using In = nb::ndarray<const T, nb::ndim<D>, nb::c_contig, nb::device::cpu>;
template <typename T, size_t D>
using Out = nb::ndarray<T, nb::ndim<D>, nb::c_contig, nb::device::cpu>;

int64_t packed_bytes(int64_t n) { return (n + 3) / 4; }

[[noreturn]] void shape_error(const std::string& message) {
  throw nb::value_error(message.c_str());
}

void check_transition(int transition) {
  if (transition < 0 || transition > 2)
    shape_error("transition code must be 0 (mask), 1 (uniform) or 2 (marginal)");
}

void check_rows(const char* what, int64_t n, int64_t b) {
  if (n != b)
    shape_error(std::string(what) + " has " + std::to_string(n) + " entries for " +
                std::to_string(b) + " rows");
}

const float* pi_ptr(int transition, const In<float, 2>& pi, int64_t m) {
  if (transition != genofast::diffusion::kMarginal) return nullptr;
  if (int64_t(pi.shape(0)) != m || pi.shape(1) != 3)
    shape_error("pi must have shape (" + std::to_string(m) + ", 3) for the marginal transition");
  return pi.data();
}

void diffusion_forward(In<uint8_t, 2> packed, In<int64_t, 1> row_ids, In<float, 1> alpha,
                       int transition, In<float, 2> pi, uint64_t seed, uint32_t offset,
                       Out<int8_t, 2> out) {
  check_transition(transition);
  const int64_t b = int64_t(out.shape(0)), m = int64_t(out.shape(1));
  if (int64_t(packed.shape(0)) != b || int64_t(packed.shape(1)) != packed_bytes(m))
    shape_error("diffusion_forward: out of shape (B, M) needs packed of shape (B, ceil(M/4))");
  check_rows("row_ids", int64_t(row_ids.shape(0)), b);
  check_rows("alpha", int64_t(alpha.shape(0)), b);
  const float* pi_data = pi_ptr(transition, pi, m);
  nb::gil_scoped_release release;
  genofast::diffusion::forward(packed.data(), b, m, row_ids.data(), alpha.data(), transition,
                               pi_data, seed, offset, out.data());
}

template <class L, class Raw>
int64_t reverse(In<Raw, 3> logits, In<int8_t, 2> x_t, In<int64_t, 1> row_ids,
                In<float, 1> alpha_t, In<float, 1> alpha_s, int transition, In<float, 2> pi,
                uint64_t seed, uint32_t offset, bool pack_bed, nb::ndarray<nb::c_contig,
                nb::device::cpu> out) {
  check_transition(transition);
  const int64_t b = int64_t(x_t.shape(0)), m = int64_t(x_t.shape(1));
  if (int64_t(logits.shape(0)) != b || int64_t(logits.shape(1)) != m || logits.shape(2) != 3)
    shape_error("diffusion_reverse: logits must have shape (B, M, 3) for x_t of shape (B, M)");
  check_rows("row_ids", int64_t(row_ids.shape(0)), b);
  check_rows("alpha_t", int64_t(alpha_t.shape(0)), b);
  check_rows("alpha_s", int64_t(alpha_s.shape(0)), b);
  const float* pi_data = pi_ptr(transition, pi, m);
  int8_t* out8 = nullptr;
  uint8_t* bed = nullptr;
  if (pack_bed) {
    if (out.dtype() != nb::dtype<uint8_t>() || out.ndim() != 2 || int64_t(out.shape(0)) != m ||
        int64_t(out.shape(1)) != packed_bytes(b))
      shape_error("diffusion_reverse: with pack_bed, out must be uint8 of shape (M, ceil(B/4))");
    bed = static_cast<uint8_t*>(out.data());
  } else {
    if (out.dtype() != nb::dtype<int8_t>() || out.ndim() != 2 || int64_t(out.shape(0)) != b ||
        int64_t(out.shape(1)) != m)
      shape_error("diffusion_reverse: out must be int8 of the shape of x_t");
    out8 = static_cast<int8_t*>(out.data());
  }
  const L* lg = reinterpret_cast<const L*>(logits.data());
  nb::gil_scoped_release release;
  if constexpr (sizeof(L) == 4)
    return genofast::diffusion::reverse_f32(lg, x_t.data(), b, m, row_ids.data(), alpha_t.data(),
                                            alpha_s.data(), transition, pi_data, seed, offset,
                                            out8, bed);
  else
    return genofast::diffusion::reverse_bf16(lg, x_t.data(), b, m, row_ids.data(),
                                             alpha_t.data(), alpha_s.data(), transition, pi_data,
                                             seed, offset, out8, bed);
}

}  // namespace

void bind_diffusion(nb::module_& m) {
  m.def("diffusion_forward", &diffusion_forward, "packed"_a.noconvert(), "row_ids"_a.noconvert(),
        "alpha"_a.noconvert(), "transition"_a, "pi"_a.noconvert(), "seed"_a, "offset"_a,
        "out"_a.noconvert(),
        "Forward noising fused with unpacking: packed uint8 [B, ceil(M/4)] -> out int8 [B, M]. "
        "transition 0 mask / 1 uniform / 2 marginal; pi float32 [M, 3] (may be empty unless "
        "marginal).");
  const char* doc =
      "One reverse step: logits [B, M, 3] (float32, or bfloat16 bits as int16), x_t int8 [B, M] "
      "-> out int8 [B, M], or with pack_bed the .bed body uint8 [M, ceil(B/4)]. Returns the "
      "number of invalid tokens (plus non-genotype samples with pack_bed).";
  m.def("diffusion_reverse", &reverse<float, float>, "logits"_a.noconvert(), "x_t"_a.noconvert(),
        "row_ids"_a.noconvert(), "alpha_t"_a.noconvert(), "alpha_s"_a.noconvert(), "transition"_a,
        "pi"_a.noconvert(), "seed"_a, "offset"_a, "pack_bed"_a, "out"_a.noconvert(), doc);
  m.def("diffusion_reverse", &reverse<uint16_t, int16_t>, "logits"_a.noconvert(),
        "x_t"_a.noconvert(), "row_ids"_a.noconvert(), "alpha_t"_a.noconvert(),
        "alpha_s"_a.noconvert(), "transition"_a, "pi"_a.noconvert(), "seed"_a, "offset"_a,
        "pack_bed"_a, "out"_a.noconvert(), doc);
}
