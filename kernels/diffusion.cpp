// Fused categorical-diffusion kernels (see diffusion.h and src/genofast/ops/diffusion.py).
//
// Design notes
// * Bit-identical with the torch reference and the Triton kernels: Philox4x32-10 as tl.philox
//   (counter (j / 4, row_id lo, row_id hi, offset), key (seed lo, seed hi), word j % 4 for SNP
//   j); float32 weights built with the same exactly-rounded operations in the same order (this
//   file is compiled with -ffp-contract=off so no FMA is ever formed); the same polynomial exp;
//   the inverse-CDF compare r * total >= c_k * 2^32 in float64.
// * Work units are (row, chunk of kChunk SNPs), handed out dynamically; one Philox call gives the
//   words of four SNPs, computed kGroups counters at a time in structure-of-arrays form so that
//   the compiler vectorizes the 32 x 32 -> 64-bit multiplies (pmuludq).
// * The mask reverse step skips Philox and the logits of a 64-SNP block with no masked token (most
//   blocks late in sampling). The .bed variant samples a 32-row x 1024-SNP tile into a
//   thread-private buffer and packs it SNP-major (8 bytes per SNP row).
#include "diffusion.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace genofast::diffusion {
namespace {

constexpr int64_t kParallelMin = int64_t(1) << 16;  // elements below which we stay serial
constexpr int kGroups = 16;                          // Philox counters per batch
constexpr int64_t kBlock = 4 * kGroups;              // SNPs per Philox batch
constexpr int64_t kChunk = 64 * kBlock;              // SNPs per work unit (4096)
constexpr int64_t kBedRows = 32;                     // rows per .bed tile (8 bytes)
constexpr int64_t kBedSnps = 1024;                   // SNPs per .bed tile

constexpr uint32_t kRoundA = 0xD2511F53u, kRoundB = 0xCD9E8D57u;
constexpr uint32_t kKeyA = 0x9E3779B9u, kKeyB = 0xBB67AE85u;

// float32 constants, bit for bit those of diffusion.py
constexpr float kThird = 0x1.555556p-2f;
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -0x1.bd0106p-13f;
constexpr float kExpCut = -87.0f;
constexpr float kExpC[7] = {0x1.6c16c2p-10f, 0x1.111112p-7f, 0x1.555556p-5f, 0x1.555556p-3f,
                            0.5f, 1.0f, 1.0f};
constexpr double kTwo32 = 4294967296.0;
constexpr uint8_t kCodeToBed[4] = {3, 2, 0, 1};  // allele_1 count (3 = missing) -> PLINK code

inline int64_t packed_bytes(int64_t n) { return (n + 3) / 4; }

struct Stream {
  uint32_t c1, c2, c3, k0, k1;
};

inline Stream make_stream(int64_t row_id, uint64_t seed, uint32_t offset) {
  const uint64_t rid = uint64_t(row_id);
  return {uint32_t(rid), uint32_t(rid >> 32), offset, uint32_t(seed), uint32_t(seed >> 32)};
}

// The random words of SNPs [4 * g0, 4 * g0 + kBlock): words[t] for SNP 4 * g0 + t.
inline void philox_block(uint32_t g0, const Stream& s, uint32_t* words) {
  uint32_t a0[kGroups], a1[kGroups], a2[kGroups], a3[kGroups];
  for (int i = 0; i < kGroups; ++i) {
    a0[i] = g0 + uint32_t(i);
    a1[i] = s.c1;
    a2[i] = s.c2;
    a3[i] = s.c3;
  }
  uint32_t k0 = s.k0, k1 = s.k1;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < kGroups; ++i) {
      const uint64_t pb = uint64_t(kRoundB) * a2[i];
      const uint64_t pa = uint64_t(kRoundA) * a0[i];
      a0[i] = uint32_t(pb >> 32) ^ a1[i] ^ k0;
      a2[i] = uint32_t(pa >> 32) ^ a3[i] ^ k1;
      a1[i] = uint32_t(pb);
      a3[i] = uint32_t(pa);
    }
    k0 += kKeyA;
    k1 += kKeyB;
  }
  for (int i = 0; i < kGroups; ++i) {
    words[4 * i] = a0[i];
    words[4 * i + 1] = a1[i];
    words[4 * i + 2] = a2[i];
    words[4 * i + 3] = a3[i];
  }
}

// exp(x) for x <= 0, exactly as diffusion.exp_reference.
inline float exp_neg(float x) {
  const float xc = x < kExpCut ? kExpCut : x;
  const float n = std::floor(xc * kLog2e + 0.5f);
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = kExpC[0];
  for (int k = 1; k < 7; ++k) p = p * r + kExpC[k];
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < kExpCut ? 0.0f : p * scale;
}

inline float load_logit(const float* p) { return *p; }
inline float load_logit(const uint16_t* p) {
  const uint32_t bits = uint32_t(*p) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline double scaled(float c) { return double(c) * kTwo32; }

// ---------------------------------------------------------------------------------------------
// forward
// ---------------------------------------------------------------------------------------------

void forward_span(const uint8_t* prow, int64_t j0, int64_t j1, float a, int transition,
                  const float* pi, const Stream& s, int8_t* orow) {
  const float om = 1.0f - a;
  // mask: keep iff r * (a + om) < a * 2^32; uniform: the three (C0, C1, total) by x0
  const double tot_mask = double(a + om), keep_mask = scaled(a);
  double uc0[3], uc1[3], utot[3];
  {
    const float noise = om * kThird, hit = a + noise;
    for (int x = 0; x < 3; ++x) {
      const float w0 = x == 0 ? hit : noise, w1 = x == 1 ? hit : noise;
      const float w2 = x == 2 ? hit : noise;
      const float c0 = w0, c1 = c0 + w1, tot = c1 + w2;
      uc0[x] = scaled(c0);
      uc1[x] = scaled(c1);
      utot[x] = double(tot);
    }
  }
  uint32_t words[kBlock];
  for (int64_t jb = j0; jb < j1; jb += kBlock) {
    philox_block(uint32_t(jb >> 2), s, words);
    const int64_t n = std::min(kBlock, j1 - jb);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = jb + t;
      const int x = (prow[j >> 2] >> (2 * (j & 3))) & 3;
      const double r = double(words[t]);
      int8_t v;
      if (x == 3) {
        v = -1;
      } else if (transition == kMask) {
        v = r * tot_mask < keep_mask ? int8_t(x) : int8_t(3);
      } else if (transition == kUniform) {
        const double prod = r * utot[x];
        v = int8_t((prod >= uc0[x]) + (prod >= uc1[x]));
      } else {
        const float* pj = pi + 3 * j;
        const float n0 = om * pj[0], n1 = om * pj[1], n2 = om * pj[2];
        const float w0 = x == 0 ? a + n0 : n0, w1 = x == 1 ? a + n1 : n1;
        const float w2 = x == 2 ? a + n2 : n2;
        const float c0 = w0, c1 = c0 + w1, tot = c1 + w2;
        const double prod = r * double(tot);
        v = int8_t((prod >= scaled(c0)) + (prod >= scaled(c1)));
      }
      orow[j] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// reverse
// ---------------------------------------------------------------------------------------------

struct RevRow {
  float at, as, d, oms, omt;
};

// Samples SNPs [j0, j1) of one row into dst[j - j0]; returns the number of invalid tokens.
template <class L>
int64_t reverse_span(const L* lrow, const int8_t* xrow, int64_t j0, int64_t j1, const RevRow& p,
                     int transition, const float* pi, const Stream& s, int8_t* dst) {
  int64_t bad = 0;
  uint32_t words[kBlock];
  for (int64_t jb = j0; jb < j1; jb += kBlock) {
    const int64_t n = std::min(kBlock, j1 - jb);
    if (transition == kMask) {
      bool any_masked = false;
      for (int64_t t = 0; t < n; ++t) {
        const int8_t x = xrow[jb + t];
        any_masked |= (x == 3) | (x == -1);
        bad += (x < -1) | (x > 3);
      }
      if (!any_masked) {
        std::memcpy(dst + (jb - j0), xrow + jb, size_t(n));
        continue;
      }
    }
    philox_block(uint32_t(jb >> 2), s, words);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = jb + t;
      const int x = xrow[j];
      const double r = double(words[t]);
      if (transition == kMask) {
        if (x != 3 && x != -1) {
          dst[j - j0] = int8_t(x);
          continue;
        }
      } else if (x < -1 || x > 2) {
        ++bad;
        dst[j - j0] = int8_t(x);
        continue;
      }
      const L* lp = lrow + 3 * j;
      const float l0 = load_logit(lp), l1 = load_logit(lp + 1), l2 = load_logit(lp + 2);
      const float mx = std::max(std::max(l0, l1), l2);
      const float e[3] = {exp_neg(l0 - mx), exp_neg(l1 - mx), exp_neg(l2 - mx)};
      if (transition == kMask) {
        const float sum = (e[0] + e[1]) + e[2];
        const float c0 = p.d * e[0], c1 = c0 + p.d * e[1], c2 = c1 + p.d * e[2];
        const float tot = c2 + p.oms * sum;
        const double prod = r * double(tot);
        dst[j - j0] =
            int8_t((prod >= scaled(c0)) + (prod >= scaled(c1)) + (prod >= scaled(c2)));
        continue;
      }
      float pk[3];
      if (transition == kUniform) {
        pk[0] = pk[1] = pk[2] = kThird;
      } else {
        pk[0] = pi[3 * j];
        pk[1] = pi[3 * j + 1];
        pk[2] = pi[3 * j + 2];
      }
      float rk[3], ak[3];
      if (x < 0) {
        for (int k = 0; k < 3; ++k) {
          rk[k] = e[k];
          ak[k] = 1.0f;
        }
      } else {
        const float pv = pk[x];
        const float co = p.omt * pv, cv = p.at + co, dpi = p.d * pv;
        const bool certain = co <= 0.0f;
        for (int k = 0; k < 3; ++k) {
          const bool is_v = k == x;
          rk[k] = certain ? (is_v ? 1.0f : 0.0f) : (is_v ? e[k] * co : e[k] * cv);
          ak[k] = is_v ? p.at + dpi : dpi;
        }
      }
      const float rs = (rk[0] + rk[1]) + rk[2];
      float w[3];
      for (int k = 0; k < 3; ++k) w[k] = ak[k] * (p.as * rk[k] + (p.oms * pk[k]) * rs);
      const float c0 = w[0], c1 = c0 + w[1], tot = c1 + w[2];
      const double prod = r * double(tot);
      dst[j - j0] = int8_t((prod >= scaled(c0)) + (prod >= scaled(c1)));
    }
  }
  return bad;
}

inline RevRow rev_row(const float* alpha_t, const float* alpha_s, int64_t i) {
  const float at = alpha_t[i], as = alpha_s[i];
  return {at, as, as - at, 1.0f - as, 1.0f - at};
}

template <class L>
int64_t reverse_impl(const L* logits, const int8_t* x_t, int64_t n_rows, int64_t n_snps,
                     const int64_t* row_ids, const float* alpha_t, const float* alpha_s,
                     int transition, const float* pi, uint64_t seed, uint32_t offset,
                     int8_t* out, uint8_t* bed_out) {
  int64_t bad = 0;
  if (n_rows == 0 || n_snps == 0) return 0;
  const bool parallel = n_rows * n_snps >= kParallelMin;
  if (out != nullptr) {
    const int64_t chunks = (n_snps + kChunk - 1) / kChunk, units = n_rows * chunks;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : bad) if (parallel)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t i = u / chunks, j0 = (u % chunks) * kChunk;
      const int64_t j1 = std::min(n_snps, j0 + kChunk);
      const Stream s = make_stream(row_ids[i], seed, offset);
      bad += reverse_span(logits + 3 * i * n_snps, x_t + i * n_snps, j0, j1,
                          rev_row(alpha_t, alpha_s, i), transition, pi, s, out + i * n_snps + j0);
    }
    return bad;
  }
  const int64_t kb = packed_bytes(n_rows);
  const int64_t row_blocks = (n_rows + kBedRows - 1) / kBedRows;
  const int64_t chunks = (n_snps + kBedSnps - 1) / kBedSnps, units = row_blocks * chunks;
#pragma omp parallel reduction(+ : bad) if (parallel)
  {
    std::vector<int8_t> buf(size_t(kBedRows * kBedSnps));
#pragma omp for schedule(dynamic, 2)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t rb = u / chunks, j0 = (u % chunks) * kBedSnps;
      const int64_t j1 = std::min(n_snps, j0 + kBedSnps);
      const int64_t r0 = rb * kBedRows, r1 = std::min(n_rows, r0 + kBedRows);
      for (int64_t i = r0; i < r1; ++i) {
        const Stream s = make_stream(row_ids[i], seed, offset);
        bad += reverse_span(logits + 3 * i * n_snps, x_t + i * n_snps, j0, j1,
                            rev_row(alpha_t, alpha_s, i), transition, pi, s,
                            buf.data() + (i - r0) * kBedSnps);
      }
      const int64_t b0 = r0 / 4, b1 = std::min(kb, b0 + kBedRows / 4);
      for (int64_t j = j0; j < j1; ++j) {
        uint8_t* orow = bed_out + j * kb;
        for (int64_t b = b0; b < b1; ++b) {
          uint8_t byte = 0;
          for (int64_t q = 0; q < 4; ++q) {
            const int64_t i = 4 * b + q;
            if (i >= r1) break;
            const int8_t g = buf[size_t((i - r0) * kBedSnps + (j - j0))];
            bad += (g < 0) | (g > 2);
            byte |= uint8_t(kCodeToBed[g & 3] << (2 * q));
          }
          orow[b] = byte;
        }
      }
    }
  }
  return bad;
}

}  // namespace

void forward(const uint8_t* packed, int64_t n_rows, int64_t n_snps, const int64_t* row_ids,
             const float* alpha, int transition, const float* pi, uint64_t seed, uint32_t offset,
             int8_t* out) {
  if (n_rows == 0 || n_snps == 0) return;
  const int64_t kp = packed_bytes(n_snps);
  const int64_t chunks = (n_snps + kChunk - 1) / kChunk, units = n_rows * chunks;
#pragma omp parallel for schedule(dynamic, 4) if (n_rows * n_snps >= kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t i = u / chunks, j0 = (u % chunks) * kChunk;
    const int64_t j1 = std::min(n_snps, j0 + kChunk);
    forward_span(packed + i * kp, j0, j1, alpha[i], transition, pi,
                 make_stream(row_ids[i], seed, offset), out + i * n_snps);
  }
}

int64_t reverse_f32(const float* logits, const int8_t* x_t, int64_t n_rows, int64_t n_snps,
                    const int64_t* row_ids, const float* alpha_t, const float* alpha_s,
                    int transition, const float* pi, uint64_t seed, uint32_t offset, int8_t* out,
                    uint8_t* bed_out) {
  return reverse_impl(logits, x_t, n_rows, n_snps, row_ids, alpha_t, alpha_s, transition, pi,
                      seed, offset, out, bed_out);
}

int64_t reverse_bf16(const uint16_t* logits, const int8_t* x_t, int64_t n_rows, int64_t n_snps,
                     const int64_t* row_ids, const float* alpha_t, const float* alpha_s,
                     int transition, const float* pi, uint64_t seed, uint32_t offset, int8_t* out,
                     uint8_t* bed_out) {
  return reverse_impl(logits, x_t, n_rows, n_snps, row_ids, alpha_t, alpha_s, transition, pi,
                      seed, offset, out, bed_out);
}

}  // namespace genofast::diffusion
