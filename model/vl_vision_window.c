/* Vision encoder geometry: grid checks, the window permutation (window_index, cu_window_seqlens),
 * the per-frame full-attention segments (cu_seqlens) and the 2-D rotary tables in window order
 * (spec §4.3-§4.5). Pure functions of the config and one item's grid; no allocation, no state,
 * thread-safe. Every size comes from struct vl_vision_config (never the published constants). */
#include "vl_impl.h"

#include <math.h>

enum vl_status vl__vision_check_grid(const struct vl_vision_config *vc, int64_t gt, int64_t gh,
                                     int64_t gw, struct vl_error *err) {
    int64_t ms = vc->spatial_merge_size;
    if (ms < 1)
        return vl__err(err, VL_ERR_MODEL, "vision: spatial_merge_size %lld < 1", (long long)ms);
    if (gt < 1 || gh < 1 || gw < 1)
        return vl__err(err, VL_ERR_INVALID, "vision: grid (%lld, %lld, %lld) has an empty axis",
                       (long long)gt, (long long)gh, (long long)gw);
    if (gh % ms || gw % ms)
        return vl__err(err, VL_ERR_INVALID,
                       "vision: grid h=%lld, w=%lld not multiples of spatial_merge_size %lld",
                       (long long)gh, (long long)gw, (long long)ms);
    int64_t hw = 0, thw = 0;
    if (__builtin_mul_overflow(gh, gw, &hw) || __builtin_mul_overflow(hw, gt, &thw))
        return vl__err(err, VL_ERR_LIMIT, "vision: grid (%lld, %lld, %lld) too large",
                       (long long)gt, (long long)gh, (long long)gw);
    return VL_OK;
}

/* Window edge in merged units: window_size // M // P (spec §1.2, "4" for the published models). */
static int64_t window_units(const struct vl_vision_config *vc) {
    int64_t vw = vc->window_size / vc->spatial_merge_size / vc->patch_size;
    return vw < 1 ? 1 : vw;
}

int64_t vl__vision_window_index(int64_t *out_widx, int64_t *out_cu,
                                const struct vl_vision_config *vc, int64_t gt, int64_t gh,
                                int64_t gw) {
    const int64_t ms = vc->spatial_merge_size;
    const int64_t unit_rows = ms * ms; /* patch rows per merge unit */
    const int64_t lh = gh / ms, lw = gw / ms;
    const int64_t vw = window_units(vc);
    /* The reference pads to a multiple of vw with at least one extra (possibly empty) window
     * row/column, then removes the resulting repeated cu values; iterating only over windows
     * that hold a unit yields the identical sequence. */
    const int64_t nwh = (lh + vw - 1) / vw, nww = (lw + vw - 1) / vw;
    int64_t k = 0, nwin = 0;
    out_cu[0] = 0;
    for (int64_t g = 0; g < gt; g++) {
        for (int64_t a = 0; a < nwh; a++) {
            for (int64_t b = 0; b < nww; b++) {
                int64_t cnt = 0;
                for (int64_t y = a * vw; y < (a + 1) * vw && y < lh; y++) {
                    for (int64_t x = b * vw; x < (b + 1) * vw && x < lw; x++) {
                        out_widx[k++] = (g * lh + y) * lw + x;
                        cnt++;
                    }
                }
                if (cnt > 0) {
                    out_cu[nwin + 1] = out_cu[nwin] + cnt * unit_rows;
                    nwin++;
                }
            }
        }
    }
    return nwin;
}

void vl__vision_cu_seqlens(int64_t *out, int64_t gt, int64_t gh, int64_t gw) {
    out[0] = 0;
    for (int64_t g = 0; g < gt; g++)
        out[g + 1] = out[g] + gh * gw;
}

void vl__vision_rope_table(float *out_cos, float *out_sin, const struct vl_vision_config *vc,
                           const int64_t *widx, int64_t gt, int64_t gh, int64_t gw) {
    const int64_t ms = vc->spatial_merge_size;
    const int64_t unit_rows = ms * ms;
    const int64_t lh = gh / ms, lw = gw / ms;
    const int64_t n_units = gt * lh * lw;
    const int64_t dh = vc->hidden_size / vc->num_heads; /* head dim */
    const int64_t half = dh / 2;                        /* rotary "dim" of the reference */
    const int64_t nf = half / 2;                        /* frequencies per axis (Dh / 4) */
    /* inv_freq[j] = 1 / theta^(2j / half), exactly as the reference evaluates it in float32. */
    float inv_freq[VL_VISION_MAX_ROPE_FREQS];
    for (int64_t j = 0; j < nf; j++)
        inv_freq[j] = 1.0f / powf(VL_VISION_ROPE_THETA, (float)(2 * j) / (float)half);
    for (int64_t k = 0; k < n_units; k++) {
        const int64_t u = widx[k] % (lh * lw); /* unit inside its frame-pair */
        const int64_t uy = u / lw, ux = u % lw;
        for (int64_t s = 0; s < unit_rows; s++) {
            const float hp = (float)(uy * ms + s / ms); /* patch row inside the frame */
            const float wp = (float)(ux * ms + s % ms); /* patch column */
            float *cr = out_cos + (k * unit_rows + s) * dh;
            float *sr = out_sin + (k * unit_rows + s) * dh;
            for (int64_t j = 0; j < nf; j++) {
                /* angle is one float32 product as in the reference; cos/sin of that float
                 * evaluated in double and rounded (within 1 ulp of PyTorch's, spec §10.2) */
                const float ah = hp * inv_freq[j], aw = wp * inv_freq[j];
                cr[j] = (float)cos((double)ah);
                sr[j] = (float)sin((double)ah);
                cr[nf + j] = (float)cos((double)aw);
                sr[nf + j] = (float)sin((double)aw);
            }
            /* the half-width angle vector is repeated for the second half (rotate-half pairs) */
            for (int64_t d = 0; d < half; d++) {
                cr[half + d] = cr[d];
                sr[half + d] = sr[d];
            }
        }
    }
}
