// Fused kernels of categorical diffusion on genotypes (CPU, OpenMP): forward noising fused with
// unpacking, and one reverse (ancestral) step fused with sampling and, on the last step, packing
// into the PLINK .bed layout. Semantics, random-number layout and the sampling rule are those of
// src/genofast/ops/diffusion.py (its module docstring); this code reproduces its torch reference
// bit for bit.
//
// All arrays are C-contiguous; the caller (diffusion_bind.cpp) checks shapes and value ranges of
// alpha / pi / row ids. The functions are plain C++, safe to call with the GIL released.
#pragma once

#include <cstdint>

namespace genofast::diffusion {

enum Transition : int { kMask = 0, kUniform = 1, kMarginal = 2 };

/// packed uint8 [n_rows, ceil(n_snps/4)] (x0), row_ids [n_rows], alpha [n_rows] -> out int8
/// [n_rows, n_snps] of x_t ~ q(x_t | x0): 0/1/2, 3 = MASK, -1 where x0 is missing. pi float32
/// [n_snps, 3] for kMarginal (ignored otherwise, may be nullptr).
void forward(const uint8_t* packed, int64_t n_rows, int64_t n_snps, const int64_t* row_ids,
             const float* alpha, int transition, const float* pi, uint64_t seed, uint32_t offset,
             int8_t* out);

/// One reverse step. logits [n_rows, n_snps, 3] as float32 (reverse_f32) or bfloat16 bits
/// (reverse_bf16); x_t int8 [n_rows, n_snps]. Exactly one of out (int8 [n_rows, n_snps]) and
/// bed_out (uint8 [n_snps, ceil(n_rows/4)], PLINK codes, pad bits 0) is non-null. Returns the
/// number of invalid x_t tokens (outside -1..3 for kMask, -1..2 otherwise) plus, with bed_out,
/// the number of samples that are not a genotype (cannot happen with alpha_s = 1).
int64_t reverse_f32(const float* logits, const int8_t* x_t, int64_t n_rows, int64_t n_snps,
                    const int64_t* row_ids, const float* alpha_t, const float* alpha_s,
                    int transition, const float* pi, uint64_t seed, uint32_t offset, int8_t* out,
                    uint8_t* bed_out);
int64_t reverse_bf16(const uint16_t* logits, const int8_t* x_t, int64_t n_rows, int64_t n_snps,
                     const int64_t* row_ids, const float* alpha_t, const float* alpha_s,
                     int transition, const float* pi, uint64_t seed, uint32_t offset, int8_t* out,
                     uint8_t* bed_out);

}  // namespace genofast::diffusion
