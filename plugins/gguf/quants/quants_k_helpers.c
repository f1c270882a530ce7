/* quants_k_helpers.c — the scale/min searches behind ggml's K-quants and imatrix paths.
 *
 * Purpose: bit-exact scalar versions of ggml-quants.c's make_qx_quants (symmetric, optional
 * weights, 19-step scale sweep), make_q3_quants (symmetric with coordinate descent, used by
 * the Q3_K reference), make_qkx2_quants / make_qkx3_quants (asymmetric scale + min with a
 * weighted least-squares sweep; qkx3 defaults the weights to x^2) and make_qp_quants
 * (non-negative values such as sub-block scales, used by the imatrix K-quant paths). Every
 * accumulation runs in index order in binary32, ties are broken with strict comparisons, and
 * nearest_int rounds half to even, all exactly as in ggml; the degenerate-case guards are
 * those of the 2026 ggml sources.
 */
#include "quants_internal.h"

static inline float qx_weight(const float *qw, int rmse_type, int i, float xi) {
    if (qw) return qw[i];
    if (rmse_type == 1) return xi * xi;
    if (rmse_type == 2) return 1;
    if (rmse_type == 3) return fabsf(xi);
    return sqrtf(fabsf(xi));
}

float qf_gguf_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type,
                             const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < QF_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            const int l = qf_nearest_int(iscale * x[i]);
            L[i] = (int8_t)(nmax + QF_MAX(-nmax, QF_MIN(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    bool return_early = false;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = true;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = qf_nearest_int(iscale * x[i]);
        l = QF_MAX(-nmax, QF_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = qx_weight(qw, rmse_type, i, x[i]);
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = qf_nearest_int(iscale * x[i]);
            l = QF_MAX(-nmax, QF_MIN(nmax - 1, l));
            const float w = qx_weight(qw, rmse_type, i, x[i]);
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = qf_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + QF_MAX(-nmax, QF_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

float qf_gguf_make_q3_quants(int n, int nmax, const float *x, int8_t *L, bool do_rmse) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < QF_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = -nmax / max;
    if (do_rmse) {
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = qf_nearest_int(iscale * x[i]);
            l = QF_MAX(-nmax, QF_MIN(nmax - 1, l));
            L[i] = (int8_t)l;
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry) {
            int n_changed = 0;
            for (int i = 0; i < n; ++i) {
                const float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0) {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int new_l = qf_nearest_int(x[i] * sl2 / slx);
                    new_l = QF_MAX(-nmax, QF_MIN(nmax - 1, new_l));
                    if (new_l != L[i]) {
                        slx += w * x[i] * new_l;
                        sl2 += w * new_l * new_l;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = (int8_t)new_l;
                            sumlx = slx;
                            suml2 = sl2;
                            ++n_changed;
                        }
                    }
                }
            }
            if (!n_changed) break;
        }
        for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
    for (int i = 0; i < n; ++i) {
        int l = qf_nearest_int(iscale * x[i]);
        l = QF_MAX(-nmax, QF_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
    }
    return 1 / iscale;
}

/* Shared body of make_qkx2_quants (weights given, degenerate when max == min) and
 * make_qkx3_quants (weights default to x^2, degenerate when max <= min). */
static inline float qkx_quants(int n, int nmax, const float *x, const float *weights,
                               uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                               float rdelta, int nstep, bool use_mad, bool v3) {
#define QF_W(i) (weights ? weights[i] : x[i] * x[i])
    float min = x[0], max = x[0];
    float sum_w = QF_W(0);
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = QF_W(i);
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (v3 ? max <= min : max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = qf_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)QF_MAX(0, QF_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        const float w = QF_W(i);
        best_error += w * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = qf_nearest_int(iscale * (x[i] - min));
            l = QF_MAX(0, QF_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = QF_W(i);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                const float w = QF_W(i);
                cur_error += w * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
#undef QF_W
}

float qf_gguf_make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
                               uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                               float rdelta, int nstep, bool use_mad) {
    return qkx_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad,
                      false);
}

float qf_gguf_make_qkx3_quants(int n, int nmax, const float *x, const float *weights,
                               uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                               float rdelta, int nstep, bool use_mad) {
    return qkx_quants(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad,
                      true);
}

float qf_gguf_make_qp_quants(int n, int nmax, const float *x, uint8_t *L,
                             const float *quant_weights) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = QF_MAX(max, x[i]);
    if (max < QF_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; ++i) L[i] = (uint8_t)qf_nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * L[i];
        const float w = quant_weights[i];
        best_mse += w * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            int l = qf_nearest_int(iscale_is * x[i]);
            l = QF_MIN(nmax, l);
            const float diff = x[i] - scale_is * l;
            const float w = quant_weights[i];
            mse += w * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = qf_nearest_int(iscale * x[i]);
        l = QF_MIN(nmax, l);
        L[i] = (uint8_t)l;
        const float w = quant_weights[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = quant_weights[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = qf_nearest_int(x[i] * sl2 / slx);
                new_l = QF_MIN(nmax, new_l);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}
