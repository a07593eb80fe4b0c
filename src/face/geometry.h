/* Pixel geometry for the face pipeline: from an upright RGB8 image to the float
 * tensors the networks eat (crop + bilinear resize, 5-point similarity alignment),
 * plus the lossless rotations/flips and the cheap quality measures (sharpness,
 * brightness). Pure C (the crop + resize also in AVX-512 where the CPU has it, with
 * bit-identical results), no library, no allocation except where an image is returned.
 *
 * Two coordinate conventions, each where it is natural:
 *  - points (landmarks, affine warps) use OpenCV's: pixel (i, j) has its centre at
 *    the integer point (i, j);
 *  - rectangles (face boxes, crops) use edges: the whole image is (0, 0, w, h), and
 *    pixel (i, j) covers [i, i+1) x [j, j+1). */
#ifndef FACE_GEOMETRY_H
#define FACE_GEOMETRY_H

#include "face/image.h"

/* The ArcFace 112x112 five-point template: left eye, right eye, nose tip, left and
 * right mouth corners (x, y interleaved). */
extern const float geometry_arcface_template_112[10];

/* Crops the rectangle [x0, x1) x [y0, y1) (edge coordinates: the whole image is
 * 0, 0, width, height) and resizes it bilinearly to out_w x out_h, writing
 * (pixel - mean) * scale per channel, RGB order, as planar NCHW (nchw != 0:
 * out[c*out_h*out_w + y*out_w + x]) or interleaved NHWC (out[(y*out_w + x)*3 + c]).
 *
 * Borders: an output sample whose centre falls inside the image replicates the edge
 * pixel for any tap outside it (so resizing the whole image matches OpenCV's
 * INTER_LINEAR resize); a sample whose centre falls outside the image has the raw
 * value 0, i.e. (0 - mean) * scale, as if the image were padded with black. out must
 * hold 3 * out_w * out_h floats. An empty rectangle yields all-padding. */
void image_crop_resize_to_tensor(const image_rgb *img, float x0, float y0, float x1,
                                 float y1, int out_w, int out_h, float mean,
                                 float scale, int nchw, float *out);

/* The same with one output channel: luma 0.299 R + 0.587 G + 0.114 B (interpolated,
 * not rounded), then (luma - mean) * scale; e.g. mean 0, scale 1/256 for the 64x64
 * landmark model. out holds out_w * out_h floats. */
void image_crop_resize_to_tensor_grey(const image_rgb *img, float x0, float y0,
                                      float x1, float y1, int out_w, int out_h,
                                      float mean, float scale, float *out);

/* Least-squares similarity (rotation, uniform scale, translation; no reflection)
 * mapping the n points src_xy to dst_xy (x, y interleaved): the closed-form 2-D
 * Umeyama solution, identical to skimage's SimilarityTransform used by ArcFace
 * alignment. m = [a, -b, tx, b, a, ty] maps (x, y) to
 * (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]).
 * Returns 0, or IMAGE_ERR_INVALID when n < 2 or the src points coincide. */
int similarity_estimate(const float *src_xy, const float *dst_xy, int n, float m[6]);

/* Inverse of a 2x3 affine matrix. Returns 0 or IMAGE_ERR_INVALID if singular. */
int affine_invert(const float m[6], float inv[6]);

/* Output pixel (x, y) takes the bilinear sample of img at m^-1 (x, y) (m maps image
 * coordinates to output coordinates, as from similarity_estimate), like
 * cv2.warpAffine with BORDER_CONSTANT 0: taps outside the image count as raw 0, so
 * a sample that straddles the border blends towards black and one fully outside is
 * (0 - mean) * scale. Layout as in image_crop_resize_to_tensor. A singular m yields
 * all-padding. */
void image_warp_affine_to_tensor(const image_rgb *img, const float m[6], int out_w,
                                 int out_h, float mean, float scale, int nchw,
                                 float *out);

/* The same into a new RGB8 image (rounded), for storing aligned crops and debugging.
 * Returns 0 or IMAGE_ERR_*; free out with image_rgb_free. */
int image_warp_affine_rgb(const image_rgb *img, const float m[6], int out_w, int out_h,
                          image_rgb *out);

/* New image with EXIF orientation 1-8 undone (6 = rotate 90 degrees clockwise, etc.).
 * Returns 0 or IMAGE_ERR_*. */
int image_rgb_orient(const image_rgb *in, int exif_orientation, image_rgb *out);
/* New image rotated clockwise by 0, 90, 180 or 270 degrees. */
int image_rgb_rotate(const image_rgb *in, int degrees_cw, image_rgb *out);
/* New image mirrored left-right. */
int image_rgb_flip_horizontal(const image_rgb *in, image_rgb *out);

/* Variance of the 4-neighbour Laplacian of luma over the pixels of [x0, x1) x
 * [y0, y1) (clipped to the image, minus a one-pixel border): a focus measure, higher
 * is sharper. Returns 0 when fewer than one interior pixel remains. */
double image_laplacian_variance(const image_rgb *img, int x0, int y0, int x1, int y1);

/* Mean luma (0-255) over [x0, x1) x [y0, y1), clipped to the image; 0 if empty. */
double image_mean_brightness(const image_rgb *img, int x0, int y0, int x1, int y1);

#endif
