/* Private helpers shared by vl_image.c and vl_video.c (image preprocessing section of libvl).
 * Not part of the public API; only those two files include it. */
#ifndef VL_IMAGE_IMPL_H
#define VL_IMAGE_IMPL_H

#include "vl_tools.h"

/* Largest temporal_patch_size handled without allocation (the published value is 2). */
#define VL_IMAGE_MAX_TEMPORAL 16

/* PIL's fixed-point resampling coefficients for one axis. */
struct vl_resample_coeffs {
    int64_t ksize;   /* taps per output sample */
    int64_t *bounds; /* (out, 2): first input index, tap count */
    int32_t *kk;     /* (out, ksize): weights in 2^-22 units */
};
enum vl_status vl__resample_coeffs(struct vl_resample_coeffs *out, int64_t in_size,
                                   int64_t out_size, struct vl_error *err);
void vl__resample_coeffs_free(struct vl_resample_coeffs *c);

void vl__image_norm_lut(float lut[VL_IMAGE_CHANNELS][256], const struct vl_image_params *p,
                        bool fused);
enum vl_status vl__image_check_params(const struct vl_image_params *p, struct vl_error *err);
enum vl_status vl__image_patchify(struct vl_vision_input *out, const uint8_t *const *frames,
                                  int64_t n_frames, int64_t w, int64_t h,
                                  const struct vl_image_params *p, bool fused,
                                  struct vl_error *err);
enum vl_status vl__image_resize_alloc(uint8_t **out, const uint8_t *rgb, int64_t w, int64_t h,
                                      int64_t tw, int64_t th, struct vl_error *err);

#endif
