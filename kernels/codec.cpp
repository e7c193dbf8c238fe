// 2-bit genotype codec kernels: pack / unpack (individual-major) and the two 2-bit transposes
// between individual-major packed bytes and PLINK's SNP-major .bed layout. See codec.h for the
// layouts and contracts.
//
// Design notes
// * The kernels move data in 16-byte SSE2 vectors (always present on x86-64, so the module needs
//   no -march flag) and fall back to portable scalar code elsewhere (or with
//   GENOFAST_FORCE_SCALAR). Int8 packing, the one step that is compute-bound, also has an AVX2
//   version picked at run time.
// * pack/unpack stream along rows; work is split into (row, chunk of bytes) units so that both a
//   tall [N, small M] and a single huge row keep every thread busy. They run at about memory
//   bandwidth.
// * The transposes work on 64 x 64 tiles of 2-bit fields (tile64: 64 rows x 16 bytes in, 64 rows
//   x 16 bytes out, delta swaps plus byte interleaves), grouped into 512-row x 1024-field blocks
//   that are staged through thread-private buffers (see "The transpose driver" for why).
// * Both PLINK code maps are affine over GF(2) per 2-bit field (x ^ K ^ ((x >> 1) & 0x55)), so they
//   cost four vector ops per 16 bytes and commute with the transposes.
#include "codec.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SSE2__) && !defined(GENOFAST_FORCE_SCALAR)
#include <emmintrin.h>
#define GENOFAST_SSE2 1
#else
#define GENOFAST_SSE2 0
#endif

// AVX2 code paths compiled with a target attribute and chosen at run time (GCC and Clang).
#if GENOFAST_SSE2 && defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define GENOFAST_AVX2_DISPATCH 1
#else
#define GENOFAST_AVX2_DISPATCH 0
#endif

// Cache-line prefetch hint (read, or write with `w` = 1); a no-op where the builtin is missing.
#if defined(__GNUC__)
#define GENOFAST_PREFETCH(p, w) __builtin_prefetch((p), (w))
#else
#define GENOFAST_PREFETCH(p, w) ((void)(p))
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "genofast kernels assume a little-endian target"
#endif

namespace genofast::codec {
namespace {

// Below this many genotypes a kernel runs on the calling thread: starting the OpenMP team costs
// more than the work.
constexpr int64_t kParallelMin = int64_t(1) << 18;
// pack/unpack work unit: this many packed bytes (4x as many genotypes) of one row, handed out
// dynamically (a few at a time) so that a preempted thread does not hold up the others.
constexpr int64_t kChunkBytes = 4096;

inline int64_t packed_bytes(int64_t n) { return (n + 3) / 4; }

// ---------------------------------------------------------------------------------------------
// PLINK code maps. Per 2-bit field x (high bit h): bed -> count is x ^ 0b10 ^ h  and
// count -> bed is x ^ 0b11 ^ h. On a whole byte: x ^ K ^ ((x >> 1) & 0x55).
// ---------------------------------------------------------------------------------------------
struct BedToCode {
  static constexpr uint8_t kXor = 0xAA;
};
struct CodeToBed {
  static constexpr uint8_t kXor = 0xFF;
};

template <class Map>
inline uint8_t map_byte(uint8_t x) {
  return uint8_t(x ^ Map::kXor ^ ((x >> 1) & 0x55));
}

// byte of four 2-bit codes -> four int8 genotypes (3 -> -1), as one little-endian uint32.
constexpr std::array<uint32_t, 256> make_unpack_lut() {
  std::array<uint32_t, 256> lut{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t word = 0;
    for (uint32_t k = 0; k < 4; ++k) {
      uint32_t code = (b >> (2 * k)) & 3;
      uint32_t value = code == 3 ? 0xFFu : code;  // int8 -1
      word |= value << (8 * k);
    }
    lut[b] = word;
  }
  return lut;
}
constexpr std::array<uint32_t, 256> kUnpackLut = make_unpack_lut();

inline bool is_bad(int8_t v) { return uint8_t(v + 1) > 3; }  // outside {-1, 0, 1, 2}

// Four int8 genotypes (as a little-endian uint32) -> one packed byte of their low two bits.
inline uint8_t pack4_word(uint32_t w) {
  w &= 0x03030303u;
  w |= w >> 6;   // g1 to bits 2-3 (g2 to 10-11, g3 to 18-19)
  w |= w >> 12;  // g2 to bits 4-5, g3 to 6-7
  return uint8_t(w);
}

// n (<= 4) genotypes -> one packed byte, unused fields 0; counts bad values.
inline uint8_t pack_partial(const int8_t* g, int64_t n, int64_t& bad) {
  uint8_t byte = 0;
  for (int64_t k = 0; k < n; ++k) {
    bad += is_bad(g[k]);
    byte |= uint8_t((g[k] & 3) << (2 * k));
  }
  return byte;
}

int64_t count_bad(const int8_t* g, int64_t n) {
  int64_t bad = 0;
  for (int64_t k = 0; k < n; ++k) bad += is_bad(g[k]);
  return bad;
}

#if GENOFAST_SSE2
// ---------------------------------------------------------------------------------------------
// SSE2 building blocks
// ---------------------------------------------------------------------------------------------
inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline void store16(void* p, __m128i v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }

template <class Map>
inline __m128i map16(__m128i x) {
  const __m128i k = _mm_set1_epi8(char(Map::kXor));
  const __m128i m55 = _mm_set1_epi8(0x55);
  // The 16-bit shift drags bit 0 of the next byte into bit 7; the 0x55 mask drops it.
  return _mm_xor_si128(_mm_xor_si128(x, k), _mm_and_si128(_mm_srli_epi16(x, 1), m55));
}

// 16 packed bytes -> 64 int8 genotypes: split out the four fields of every byte, turn 3 into -1,
// then interleave bytes (epi8) and pairs (epi16) so field k of byte b lands at out[4b + k].
inline void unpack64(const uint8_t* in, int8_t* out) {
  const __m128i m3 = _mm_set1_epi8(3);
  const __m128i v = load16(in);
  __m128i a0 = _mm_and_si128(v, m3);
  __m128i a1 = _mm_and_si128(_mm_srli_epi16(v, 2), m3);
  __m128i a2 = _mm_and_si128(_mm_srli_epi16(v, 4), m3);
  __m128i a3 = _mm_and_si128(_mm_srli_epi16(v, 6), m3);
  a0 = _mm_or_si128(a0, _mm_cmpeq_epi8(a0, m3));  // 3 -> 0xFF = -1
  a1 = _mm_or_si128(a1, _mm_cmpeq_epi8(a1, m3));
  a2 = _mm_or_si128(a2, _mm_cmpeq_epi8(a2, m3));
  a3 = _mm_or_si128(a3, _mm_cmpeq_epi8(a3, m3));
  const __m128i l01 = _mm_unpacklo_epi8(a0, a1), h01 = _mm_unpackhi_epi8(a0, a1);
  const __m128i l23 = _mm_unpacklo_epi8(a2, a3), h23 = _mm_unpackhi_epi8(a2, a3);
  store16(out, _mm_unpacklo_epi16(l01, l23));
  store16(out + 16, _mm_unpackhi_epi16(l01, l23));
  store16(out + 32, _mm_unpacklo_epi16(h01, h23));
  store16(out + 48, _mm_unpackhi_epi16(h01, h23));
}

// 64 int8 genotypes -> 16 packed bytes (low two bits of each value). ORs into `bad` a nonzero byte
// for every value outside {-1, 0, 1, 2} (v + 1 must fit in two bits).
inline __m128i pack64(const int8_t* in, __m128i& bad) {
  const __m128i m3 = _mm_set1_epi8(3), one = _mm_set1_epi8(1);
  const __m128i mFC = _mm_set1_epi8(char(0xFC)), mFF = _mm_set1_epi32(0xFF);
  __m128i w[4];
  for (int k = 0; k < 4; ++k) {
    const __m128i g = load16(in + 16 * k);
    bad = _mm_or_si128(bad, _mm_and_si128(_mm_add_epi8(g, one), mFC));
    __m128i x = _mm_and_si128(g, m3);           // one field per byte of each 32-bit lane
    x = _mm_or_si128(x, _mm_srli_epi32(x, 6));   // as pack4_word, on four lanes at once
    x = _mm_or_si128(x, _mm_srli_epi32(x, 12));
    w[k] = _mm_and_si128(x, mFF);
  }
  // Gather the low byte of each of the 16 lanes (values 0..255 survive both saturating packs).
  return _mm_packus_epi16(_mm_packs_epi32(w[0], w[1]), _mm_packs_epi32(w[2], w[3]));
}

inline bool any_nonzero(__m128i v) {
  return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) != 0xFFFF;
}

// Exchanges the 2-bit fields of `lo` selected by (mask << S) with those of `hi` selected by mask
// (a "delta swap" between two registers; the shifts are per 16-bit lane, the mask keeps fields
// inside their byte).
template <int S>
inline void delta_swap(__m128i& lo, __m128i& hi, __m128i mask) {
  const __m128i t = _mm_and_si128(_mm_xor_si128(_mm_srli_epi16(lo, S), hi), mask);
  hi = _mm_xor_si128(hi, t);
  lo = _mm_xor_si128(lo, _mm_slli_epi16(t, S));
}

// 16 x 16 byte transpose: four rounds of interleaving register k with register k + 8. Each round
// rotates the 8-bit (register, byte) index left by one bit, so four rounds swap its halves.
inline void transpose16x16(__m128i r[16]) {
  for (int round = 0; round < 4; ++round) {
    __m128i n[16];
    for (int k = 0; k < 8; ++k) {
      n[2 * k] = _mm_unpacklo_epi8(r[k], r[k + 8]);
      n[2 * k + 1] = _mm_unpackhi_epi8(r[k], r[k + 8]);
    }
    for (int k = 0; k < 16; ++k) r[k] = n[k];
  }
}

// Transposes a 64 x 64 tile of 2-bit fields and applies Map to every field.
// in[r] points at 16 readable bytes holding fields (r, 0..63); out[c] receives 16 bytes holding
// fields (0..63, c). With r = 4*sb + sk and c = 4*ib + ik:
//   stage 1, for each sb: the four rows sk = 0..3 exchange field slots with a 4 x 4 2-bit transpose
//            across registers (two rounds of delta swaps), giving a register per (sb, ik) whose
//            byte ib holds fields (4*sb + 0..3, 4*ib + ik);
//   stage 2, for each ik: a 16 x 16 byte transpose of the sixteen (sb, ik) registers gives the
//            sixteen output rows 4*ib + ik.
template <class Map>
void tile64(const uint8_t* const* in, uint8_t* const* out) {
  const __m128i m0F = _mm_set1_epi8(0x0F), m33 = _mm_set1_epi8(0x33);
  __m128i mid[4][16];
  for (int sb = 0; sb < 16; ++sb) {
    __m128i x0 = map16<Map>(load16(in[4 * sb + 0]));
    __m128i x1 = map16<Map>(load16(in[4 * sb + 1]));
    __m128i x2 = map16<Map>(load16(in[4 * sb + 2]));
    __m128i x3 = map16<Map>(load16(in[4 * sb + 3]));
    delta_swap<4>(x0, x2, m0F);  // 2 x 2 blocks of fields
    delta_swap<4>(x1, x3, m0F);
    delta_swap<2>(x0, x1, m33);  // fields inside each block
    delta_swap<2>(x2, x3, m33);
    mid[0][sb] = x0;
    mid[1][sb] = x1;
    mid[2][sb] = x2;
    mid[3][sb] = x3;
  }
  for (int ik = 0; ik < 4; ++ik) {
    transpose16x16(mid[ik]);
    for (int ib = 0; ib < 16; ++ib) store16(out[4 * ib + ik], mid[ik][ib]);
  }
}

#if GENOFAST_AVX2_DISPATCH
// AVX2 packing, chosen at run time (the module itself is built for baseline x86-64): two
// multiply-adds replace the shift/or chain and each step handles 128 genotypes.

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// n128 blocks of 128 int8 genotypes -> 32 packed bytes each. Returns whether any value lies
// outside {-1, 0, 1, 2}.
__attribute__((target("avx2"))) bool pack128_avx2(const int8_t* in, int64_t n128, uint8_t* out) {
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  const __m256i mFC = _mm256_set1_epi8(char(0xFC));
  const __m256i w14 = _mm256_set1_epi16(0x0401);      // bytes (1, 4): x0 + 4 x1 per 16-bit lane
  const __m256i w116 = _mm256_set1_epi32(0x00100001);  // words (1, 16): + 16 (x2 + 4 x3)
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i bad = _mm256_setzero_si256();
  for (int64_t i = 0; i < n128; ++i, in += 128, out += 32) {
    __m256i w[4];
    for (int k = 0; k < 4; ++k) {
      const __m256i g = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 32 * k));
      bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_add_epi8(g, one), mFC));
      const __m256i x = _mm256_and_si256(g, m3);
      w[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(x, w14), w116);  // one byte per 32-bit lane
    }
    // The packs work per 128-bit half: dword d of the result holds 4 bytes from w[d % 4] half
    // d / 4; the permutation restores memory order.
    const __m256i packed = _mm256_packus_epi16(_mm256_packs_epi32(w[0], w[1]),
                                               _mm256_packs_epi32(w[2], w[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm256_permutevar8x32_epi32(packed, order));
  }
  return !_mm256_testz_si256(bad, bad);
}
#endif

#else  // portable scalar fallback

template <class Map>
void tile64(const uint8_t* const* in, uint8_t* const* out) {
  for (int c = 0; c < 64; ++c) {
    const int byte = c >> 2, shift = 2 * (c & 3);
    for (int sb = 0; sb < 16; ++sb) {
      uint8_t v = 0;
      for (int sk = 0; sk < 4; ++sk)
        v |= uint8_t(((in[4 * sb + sk][byte] >> shift) & 3) << (2 * sk));
      out[c][sb] = map_byte<Map>(v);
    }
  }
}

#endif  // GENOFAST_SSE2

// ---------------------------------------------------------------------------------------------
// pack / unpack of one row segment: bytes [b0, b1) of the packed row (genotypes 4*b0 ..)
// ---------------------------------------------------------------------------------------------
void unpack_segment(const uint8_t* in, int8_t* out, int64_t b0, int64_t b1, int64_t n_snps) {
  const int64_t full_end = std::min(b1, n_snps / 4);  // bytes whose four fields are all real
  int64_t b = b0;
#if GENOFAST_SSE2
  for (; b + 16 <= full_end; b += 16) unpack64(in + b, out + 4 * b);
#endif
  for (; b < full_end; ++b) std::memcpy(out + 4 * b, &kUnpackLut[in[b]], 4);
  if (b < b1) {  // the row's last byte, partly padding
    const uint32_t word = kUnpackLut[in[b]];
    std::memcpy(out + 4 * b, &word, size_t(n_snps - 4 * b));
  }
}

// Packs n int8 genotypes into ceil(n/4) bytes (the last one zero-padded); returns the number of
// values outside {-1, 0, 1, 2}. Bad values are an error path: the vector loops only flag them and
// the flagged stretch is then counted exactly.
int64_t pack_run(const int8_t* in, int64_t n, uint8_t* out) {
  int64_t bad = 0, f = 0;
#if GENOFAST_AVX2_DISPATCH
  if (n >= 128 && cpu_has_avx2()) {
    f = 128 * (n / 128);
    if (pack128_avx2(in, f / 128, out)) bad += count_bad(in, f);
  }
#endif
#if GENOFAST_SSE2
  __m128i bad_bytes = _mm_setzero_si128();
  const int64_t f0 = f;
  for (; f + 64 <= n; f += 64) store16(out + f / 4, pack64(in + f, bad_bytes));
  if (any_nonzero(bad_bytes)) bad += count_bad(in + f0, f - f0);
#endif
  for (; f + 4 <= n; f += 4) {
    uint32_t w;
    std::memcpy(&w, in + f, 4);
    out[f / 4] = pack4_word(w);
    bad += count_bad(in + f, 4);
  }
  if (f < n) out[f / 4] = pack_partial(in + f, n - f, bad);
  return bad;
}

// ---------------------------------------------------------------------------------------------
// The transpose driver
// ---------------------------------------------------------------------------------------------
//
// Input: R rows of 2-bit fields; output row c (one per field position of the input) gets the
// fields (0..R-1, c), ceil(R/4) bytes.
//
// Transposing a matrix much larger than the caches is bound by memory latency, not arithmetic:
// tile64 alone runs at over 20 G fields/s per core from L1, but fed straight from big arrays it
// spends most of its time waiting on 64 scattered rows in and 64 scattered rows out. So the work
// is cut into blocks of kBlockRows input rows x kBlockFields fields, and each block goes through
// three stages on thread-private buffers that stay in L2:
//   1. gather: copy each input row's slice (kBlockFields / 4 contiguous bytes) into `in`
//      (packing int8 on the way for pack_bed; zero-filling past the edges);
//   2. transpose the block tile by tile, `in` -> `out`, all in cache;
//   3. scatter: copy each output row's slice (kBlockRows / 4 contiguous bytes) to its place(s),
//      masking the pad bits of a row's last byte.
// Stages 1 and 3 are plain streaming copies of contiguous runs, which keep many cache misses in
// flight; software prefetches reach a few rows ahead of each.

constexpr int64_t kBlockRows = 512;     // input rows per block: 128 bytes of each output row
constexpr int64_t kBlockFields = 1024;  // fields per block: 256 bytes of each input row
constexpr int64_t kInStride = kBlockFields / 4;  // bytes per row of the `in` buffer
constexpr int64_t kOutStride = kBlockRows / 4;   // bytes per row of the `out` buffer
constexpr int64_t kPrefetchRows = 8;    // how far ahead the copies prefetch

// Rows already 2-bit packed (a .bed body or a packed batch), optionally picked by a row index.
struct PackedRows {
  const uint8_t* base;
  int64_t row_bytes;
  const int64_t* index;  // nullptr: row r is row r
  int64_t bad = 0;       // (interface symmetry with Int8Rows; never bad)

  const uint8_t* row(int64_t r) const { return base + (index ? index[r] : r) * row_bytes; }

  void prefetch(int64_t r, int64_t byte, int64_t n) const {
    const uint8_t* p = row(r);
    const int64_t end = std::min(row_bytes, byte + n);
    for (int64_t b = byte; b < end; b += 64) GENOFAST_PREFETCH(p + b, 0);
  }

  // Bytes [byte, byte + n) of row r into dst (n = kInStride), zeros past the row's end.
  void gather(int64_t r, int64_t byte, int64_t n, uint8_t* dst) {
    const int64_t avail = std::max<int64_t>(0, std::min(n, row_bytes - byte));
    std::memcpy(dst, row(r) + byte, size_t(avail));
    if (avail < n) std::memset(dst + avail, 0, size_t(n - avail));
  }
};

// int8 genotype rows, packed on the fly (pack_bed); counts values outside {-1, 0, 1, 2}.
struct Int8Rows {
  const int8_t* base;
  int64_t n_fields;
  int64_t bad = 0;

  void prefetch(int64_t r, int64_t byte, int64_t n) const {
    const int8_t* p = base + r * n_fields;
    const int64_t end = std::min(n_fields, 4 * (byte + n));
    for (int64_t b = 4 * byte; b < end; b += 64) GENOFAST_PREFETCH(p + b, 0);
  }

  // Packs fields [4 * byte, 4 * (byte + n)) of row r into dst, zeros past the row's end.
  void gather(int64_t r, int64_t byte, int64_t n, uint8_t* dst) {
    const int64_t avail = std::max<int64_t>(0, std::min(n_fields, 4 * (byte + n)) - 4 * byte);
    bad += pack_run(base + r * n_fields + 4 * byte, avail, dst);
    const int64_t written = (avail + 3) / 4;
    if (written < n) std::memset(dst + written, 0, size_t(n - written));
  }
};

// Output rows 0..n_rows-1, one per field position of the input (out row c <- input field c).
struct DirectSink {
  uint8_t* base;
  int64_t n_rows;
  bool any(int64_t /*tile*/) const { return true; }
  template <class F>
  void for_each_dest(int64_t c, F&& f) const {
    if (c < n_rows) f(c);
  }
};

// Output rows picked by an index into the input's field positions (out row i <- input field
// index[i]), inverted once into CSR form: field c feeds out rows dest[first[c] .. first[c+1]).
// Tiles of 64 fields that feed no output are skipped altogether.
struct SelectSink {
  uint8_t* base;
  std::vector<int64_t> first, dest;
  std::vector<uint8_t> tile_used;

  SelectSink(uint8_t* out, const int64_t* index, int64_t n_out, int64_t n_fields) : base(out) {
    first.assign(size_t(n_fields) + 1, 0);
    for (int64_t i = 0; i < n_out; ++i) ++first[size_t(index[i]) + 1];
    for (int64_t c = 0; c < n_fields; ++c) first[c + 1] += first[c];
    dest.resize(size_t(n_out));
    std::vector<int64_t> cursor(first.begin(), first.end() - 1);
    for (int64_t i = 0; i < n_out; ++i) dest[size_t(cursor[size_t(index[i])]++)] = i;
    const int64_t n_tiles = (n_fields + 63) / 64;
    tile_used.assign(size_t(n_tiles), 0);
    for (int64_t t = 0; t < n_tiles; ++t)
      tile_used[t] = first[std::min(n_fields, 64 * t + 64)] > first[64 * t];
  }
  bool any(int64_t tile) const { return tile_used[size_t(tile)] != 0; }
  template <class F>
  void for_each_dest(int64_t c, F&& f) const {
    if (c + 1 >= int64_t(first.size())) return;
    for (int64_t k = first[c]; k < first[c + 1]; ++k) f(dest[k]);
  }
};

template <class Map, class Source, class Sink>
void transpose(Source& source, const Sink& sink, int64_t n_in_rows, int64_t n_fields) {
  if (n_in_rows <= 0 || n_fields <= 0) return;
  const int64_t out_row_bytes = packed_bytes(n_in_rows);
  const int64_t blocks_along = (n_fields + kBlockFields - 1) / kBlockFields;
  const int64_t blocks_down = (n_in_rows + kBlockRows - 1) / kBlockRows;
  const int64_t n_blocks = blocks_along * blocks_down;
  // The last output byte of each row is partly padding when R % 4 != 0: keep only real fields.
  const uint8_t last_mask = n_in_rows % 4 ? uint8_t((1u << (2 * (n_in_rows % 4))) - 1) : 0xFF;
  int64_t bad = 0;

#pragma omp parallel if (n_in_rows * n_fields >= kParallelMin) reduction(+ : bad)
  {
    Source src = source;  // private copy: its bad-value counter is per thread
    src.bad = 0;
    // Thread-private staging buffers (128 KiB each).
    std::vector<uint8_t> in_buf(size_t(kBlockRows * kInStride));
    std::vector<uint8_t> out_buf(size_t(kBlockFields * kOutStride));
    uint8_t* in = in_buf.data();
    uint8_t* out = out_buf.data();
    const uint8_t* in_rows[64];
    uint8_t* out_rows[64];

    // Dynamic: blocks are large (512 K fields), and on a shared machine a preempted thread must
    // not hold up the others.
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < n_blocks; ++block) {
      const int64_t c0 = (block % blocks_along) * kBlockFields;  // first field
      const int64_t r0 = (block / blocks_along) * kBlockRows;    // first input row
      const int64_t n_r = std::min(kBlockRows, n_in_rows - r0);
      const int64_t n_c = std::min(kBlockFields, n_fields - c0);
      const int64_t tile0 = c0 / 64, n_ct = (n_c + 63) / 64, n_rt = (n_r + 63) / 64;
      bool used = false;
      for (int64_t t = 0; t < n_ct; ++t) used |= sink.any(tile0 + t);
      if (!used) continue;

      // 1. gather the input slices; rows past the end (up to a whole tile) are zero
      for (int64_t j = 0; j < n_r; ++j) {
        if (j + kPrefetchRows < n_r) src.prefetch(r0 + j + kPrefetchRows, c0 / 4, kInStride);
        src.gather(r0 + j, c0 / 4, kInStride, in + j * kInStride);
      }
      if (n_r % 64) std::memset(in + n_r * kInStride, 0, size_t((64 * n_rt - n_r) * kInStride));

      // 2. transpose tile by tile
      for (int64_t ct = 0; ct < n_ct; ++ct) {
        if (!sink.any(tile0 + ct)) continue;
        for (int64_t rt = 0; rt < n_rt; ++rt) {
          for (int64_t j = 0; j < 64; ++j) {
            in_rows[j] = in + (64 * rt + j) * kInStride + 16 * ct;
            out_rows[j] = out + (64 * ct + j) * kOutStride + 16 * rt;
          }
          tile64<Map>(in_rows, out_rows);
        }
      }

      // 3. scatter the output slices
      const int64_t out_byte = r0 / 4;
      const int64_t n_bytes = std::min(kOutStride, out_row_bytes - out_byte);
      const bool masked = out_byte + n_bytes == out_row_bytes;
      for (int64_t j = 0; j < n_c; ++j) {
        if (j + kPrefetchRows < n_c) {
          sink.for_each_dest(c0 + j + kPrefetchRows, [&](int64_t row) {
            uint8_t* dst = sink.base + row * out_row_bytes + out_byte;
            for (int64_t b = 0; b < n_bytes; b += 64) GENOFAST_PREFETCH(dst + b, 1);
          });
        }
        sink.for_each_dest(c0 + j, [&](int64_t row) {
          uint8_t* dst = sink.base + row * out_row_bytes + out_byte;
          std::memcpy(dst, out + j * kOutStride, size_t(n_bytes));
          if (masked) dst[n_bytes - 1] &= last_mask;
        });
      }
    }
    bad += src.bad;
  }
  source.bad = bad;
}

void check_index(const int64_t* index, int64_t n, int64_t limit, const char* what,
                 const char* limit_what) {
  for (int64_t i = 0; i < n; ++i) {
    if (index[i] < 0 || index[i] >= limit) {
      throw std::out_of_range(std::string("bed_to_packed: ") + what + "[" + std::to_string(i) +
                              "] = " + std::to_string(index[i]) +
                              " is out of range: the .bed has " + std::to_string(limit) + " " +
                              limit_what);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// entry points
// ---------------------------------------------------------------------------------------------

void unpack(const uint8_t* packed, int64_t n_rows, int64_t n_snps, int8_t* out) {
  const int64_t row_bytes = packed_bytes(n_snps);
  if (n_rows <= 0 || row_bytes == 0) return;
  const int64_t chunks = (row_bytes + kChunkBytes - 1) / kChunkBytes;
  const int64_t units = n_rows * chunks;
#pragma omp parallel for schedule(dynamic, 4) if (n_rows * n_snps >= kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t row = u / chunks, b0 = (u % chunks) * kChunkBytes;
    const int64_t b1 = std::min(row_bytes, b0 + kChunkBytes);
    unpack_segment(packed + row * row_bytes, out + row * n_snps, b0, b1, n_snps);
  }
}

int64_t pack(const int8_t* genotypes, int64_t n_rows, int64_t n_snps, uint8_t* out) {
  const int64_t row_bytes = packed_bytes(n_snps);
  if (n_rows <= 0 || row_bytes == 0) return 0;
  const int64_t chunks = (row_bytes + kChunkBytes - 1) / kChunkBytes;
  const int64_t units = n_rows * chunks;
  int64_t bad = 0;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : bad) \
    if (n_rows * n_snps >= kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t row = u / chunks, b0 = (u % chunks) * kChunkBytes;
    const int64_t b1 = std::min(row_bytes, b0 + kChunkBytes);
    const int64_t n = std::min(4 * b1, n_snps) - 4 * b0;  // genotypes in this segment
    bad += pack_run(genotypes + row * n_snps + 4 * b0, n, out + row * row_bytes + b0);
  }
  return bad;
}

void bed_to_packed(const uint8_t* bed, int64_t bed_rows, int64_t bed_row_bytes,
                   const int64_t* snp_index, int64_t n_snps, const int64_t* sample_index,
                   int64_t n_out, uint8_t* out) {
  const int64_t n_fields = 4 * bed_row_bytes;  // individuals addressable in a .bed row
  if (snp_index) check_index(snp_index, n_snps, bed_rows, "snp_index", "SNP rows");
  if (sample_index)
    check_index(sample_index, n_out, n_fields, "sample_index", "individual slots per SNP row");
  PackedRows source{bed, bed_row_bytes, snp_index};
  if (sample_index) {
    if (n_out == 0) return;
    const SelectSink sink(out, sample_index, n_out, n_fields);
    transpose<BedToCode>(source, sink, n_snps, n_fields);
  } else {
    transpose<BedToCode>(source, DirectSink{out, n_out}, n_snps, std::min(n_fields, n_out));
  }
}

void packed_to_bed(const uint8_t* packed, int64_t n_rows, int64_t n_snps, uint8_t* out) {
  PackedRows source{packed, packed_bytes(n_snps), nullptr};
  transpose<CodeToBed>(source, DirectSink{out, n_snps}, n_rows, n_snps);
}

int64_t pack_bed(const int8_t* genotypes, int64_t n_rows, int64_t n_snps, uint8_t* out) {
  Int8Rows source{genotypes, n_snps};
  transpose<CodeToBed>(source, DirectSink{out, n_snps}, n_rows, n_snps);
  return source.bad;
}

}  // namespace genofast::codec
