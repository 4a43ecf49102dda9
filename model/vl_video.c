/* Video preprocessing of Qwen2.5-VL (spec §3): qwen-vl-utils frame count and frame indices,
 * and already-sampled frames to pixel_values_videos (pad to a multiple of temporal_patch_size,
 * per-video smart_resize, fused float32 normalisation of the HF video processor, patchify with
 * frame-pairs outermost). Frames are resized with the PIL-exact bicubic of vl_image.c; the
 * reference video path uses torchvision, which may differ by 1 LSB (spec §2.4.2).
 * Pure functions over caller buffers: thread-safe. */
#include "vl.h"
#include "vl_impl.h"
#include "vl_image_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* qwen-vl-utils constants (spec §3.1). */
#define VL_VIDEO_FRAME_FACTOR   2
#define VL_VIDEO_MIN_FRAMES     4
#define VL_VIDEO_MAX_FRAMES     768
#define VL_VIDEO_MAX_N_FRAMES   100000 /* sanity bound on frames handed to vl_video_preprocess */

enum vl_status vl_video_nframes(int64_t *out, int64_t total_frames, double video_fps,
                                double target_fps, struct vl_error *err) {
    if (total_frames <= 0 || !(video_fps > 0) || !(target_fps > 0))
        return vl__err(err, VL_ERR_INVALID, "video: %lld frames at %g fps (target %g fps)",
                       (long long)total_frames, video_fps, target_fps);
    const double ff = VL_VIDEO_FRAME_FACTOR;
    double min_frames = ceil(VL_VIDEO_MIN_FRAMES / ff) * ff;
    double max_cap = (double)(total_frames < VL_VIDEO_MAX_FRAMES ? total_frames
                                                                 : VL_VIDEO_MAX_FRAMES);
    double max_frames = floor(max_cap / ff) * ff;
    double nf = (double)total_frames / video_fps * target_fps;
    nf = fmin(fmin(fmax(nf, min_frames), max_frames), (double)total_frames);
    int64_t n = (int64_t)(floor(nf / ff) * ff);
    if (n < VL_VIDEO_FRAME_FACTOR || n > total_frames)
        return vl__err(err, VL_ERR_INVALID,
                       "video: nframes should be in [%d, %lld], got %lld", VL_VIDEO_FRAME_FACTOR,
                       (long long)total_frames, (long long)n);
    *out = n;
    return VL_OK;
}

void vl_video_frame_indices(int64_t *out, int64_t n, int64_t total_frames) {
    if (n <= 0)
        return;
    if (n == 1) {
        out[0] = 0;
        return;
    }
    /* torch.linspace in float32: the first half counts up from start, the second half down
     * from end (PyTorch's CPU kernel), then round() (half to even). */
    float start = 0.0f, end = (float)(total_frames - 1);
    float step = (end - start) / (float)(n - 1);
    int64_t halfway = n / 2;
    for (int64_t i = 0; i < n; i++) {
        float v = i < halfway ? start + step * (float)i : end - step * (float)(n - i - 1);
        out[i] = (int64_t)nearbyintf(v);
    }
}

enum vl_status vl_video_preprocess(struct vl_vision_input *out, const uint8_t *const *frames,
                                   int64_t n_frames, int64_t w, int64_t h, double fps,
                                   const struct vl_image_params *p, struct vl_error *err) {
    memset(out, 0, sizeof *out);
    enum vl_status st = vl__image_check_params(p, err);
    if (st != VL_OK)
        return st;
    if (n_frames <= 0 || n_frames > VL_VIDEO_MAX_N_FRAMES || !(fps > 0))
        return vl__err(err, VL_ERR_INVALID, "video: %lld frames at %g fps", (long long)n_frames,
                       fps);
    int64_t th = 0, tw = 0;
    st = vl_smart_resize(&th, &tw, h, w, p->patch_size * p->merge_size, p->min_pixels,
                         p->max_pixels, err);
    if (st != VL_OK)
        return st;
    int64_t TP = p->temporal_patch_size;
    int64_t padded = (n_frames + TP - 1) / TP * TP;
    const uint8_t **fr = vl__calloc((size_t)padded, sizeof *fr);   /* (padded) frame pointers */
    uint8_t **owned = vl__calloc((size_t)n_frames, sizeof *owned); /* (n_frames) resized copies */
    if (!fr || !owned) {
        st = vl__err(err, VL_ERR_NOMEM, "video: out of memory for %lld frames",
                     (long long)padded);
        goto done;
    }
    for (int64_t t = 0; t < n_frames; t++) {
        if ((st = vl__image_resize_alloc(&owned[t], frames[t], w, h, tw, th, err)) != VL_OK)
            goto done;
        fr[t] = owned[t] ? owned[t] : frames[t];
    }
    /* Pad the frame count by repeating the last frame. */
    for (int64_t t = n_frames; t < padded; t++)
        fr[t] = fr[n_frames - 1];
    st = vl__image_patchify(out, fr, padded, tw, th, p, true, err);
    if (st == VL_OK) {
        out->is_video = true;
        out->second_per_grid_t = (double)TP / fps;
    }
done:
    if (owned)
        for (int64_t t = 0; t < n_frames; t++)
            vl__free(owned[t]);
    vl__free(owned);
    vl__free(fr);
    return st;
}
