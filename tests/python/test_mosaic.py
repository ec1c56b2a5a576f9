"""The Mosaic benchmark adapter (host/python/mosaic/navier-stokes-grid/tesseract_api.py), loaded
in-process by tesseract_core: the Taylor-Green forward check (viscous decay against the
analytic solution, the benchmark's forward/tgv_nu_sweep at N = 16), the vector-Jacobian
product against central differences (initial velocity and viscosity, 2D and 3D, float64),
the collocated <-> face conversion against its transpose, and the refused inputs. Skipped
(exit 77) where tesseract_core is not installed (.ci/python-env installs it)."""

import os
import sys
import unittest

try:
    from tesseract_core import Tesseract
except ImportError:
    print("tesseract_core is not installed: skipped")
    sys.exit(77)

import numpy as np

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "host", "python",
                   "mosaic", "navier-stokes-grid", "tesseract_api.py")


def tgv(n, extent=2 * np.pi):
    x = np.linspace(0, extent, n, endpoint=False)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return np.stack([np.sin(X) * np.cos(Y), -np.cos(X) * np.sin(Y)], -1)[:, :, None, :]


def smooth_random(shape, seed):
    """A smooth random velocity on Mosaic's layout (a few low Fourier modes per component)."""
    rng = np.random.default_rng(seed)
    d = shape[-1]
    n = shape[0]
    x = np.arange(n) * 2 * np.pi / n
    grids = np.meshgrid(*([x] * d), indexing="ij")
    out = np.zeros(shape)
    for a in range(d):
        comp = np.zeros(grids[0].shape)
        for _ in range(3):
            k = rng.integers(-2, 3, size=d)
            comp += 0.3 * rng.standard_normal() * np.cos(sum(k[b] * grids[b] for b in range(d))
                                                         + rng.uniform(0, 2 * np.pi))
        out[..., a] = comp[:, :, None] if d == 2 else comp
    return out


class MosaicAdapter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tesseract.from_tesseract_api(API)
        import importlib.util
        spec = importlib.util.spec_from_file_location("dfluid_mosaic_api", API)
        cls.mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cls.mod)

    def test_taylor_green_decay_matches_the_analytic_solution(self):
        # forward/tgv_nu_sweep (dt 0.05, 20 steps) at N = 16: |u - u_exact| / |u_exact|.
        v0 = tgv(16).astype(np.float32)
        for nu, bound in ((1e-3, 0.02), (5e-2, 0.02)):
            out = self.t.apply({"v0": v0, "viscosity": np.array([nu], np.float32),
                                "dt": np.array([0.05], np.float32), "steps": 20})
            self.assertIsNone(out.get("drag"))
            ref = tgv(16) * np.exp(-2 * nu * 20 * 0.05)
            err = np.linalg.norm(out["result"] - ref) / np.linalg.norm(ref)
            print(f"  TGV N=16 nu={nu}: relative L2 error {err:.3e}")
            self.assertLess(err, bound)

    def test_face_conversion_is_transposed_exactly(self):
        rng = np.random.default_rng(3)
        for shape in ((8, 8, 1, 2), (6, 6, 6, 3), (7, 7, 1, 2)):
            m = self.mod
            x = m._to_dfluid(rng.standard_normal(shape))
            y = m._to_dfluid(rng.standard_normal(shape))
            for f, ft in ((m.points_to_faces, m.points_to_faces_T),
                          (m.faces_to_points, m.faces_to_points_T)):
                lhs = sum(np.vdot(a, b) for a, b in zip(f(x), y))
                rhs = sum(np.vdot(a, b) for a, b in zip(x, ft(y)))
                self.assertLess(abs(lhs - rhs), 1e-12 * max(1.0, abs(lhs)))

    def check_vjp(self, shape, nu, steps, seed):
        m = self.mod
        v0 = smooth_random(shape, seed)
        w = smooth_random(shape, seed + 1)
        dt, extent = 0.05, 2 * np.pi
        gv0, gnu = m.vjp64(v0, nu, dt, steps, extent, w)
        loss = lambda v, n: float(np.vdot(w, m.forward64(v, n, dt, steps, extent)))  # noqa: E731
        d = smooth_random(shape, seed + 2)
        h = 1e-6
        fd = (loss(v0 + h * d, nu) - loss(v0 - h * d, nu)) / (2 * h)
        ad = float(np.vdot(gv0, d))
        err_v = abs(fd - ad) / abs(ad)
        hn = 1e-4 * nu  # the solves converge to 1e-12: a smaller step sees their noise
        fd_nu = (loss(v0, nu + hn) - loss(v0, nu - hn)) / (2 * hn)
        err_nu = abs(fd_nu - gnu) / abs(gnu)
        print(f"  VJP {shape}: v0 rel err {err_v:.2e}, viscosity grad {gnu:.6e} "
              f"(fd {fd_nu:.6e}) rel err {err_nu:.2e}")
        self.assertLess(err_v, 1e-6)
        self.assertLess(err_nu, 1e-6)
        # The endpoint: the same numbers in float32.
        out = self.t.vector_jacobian_product(
            {"v0": v0.astype(np.float32), "viscosity": np.array([nu], np.float32),
             "dt": np.array([dt], np.float32), "steps": steps},
            vjp_inputs=["v0", "viscosity"], vjp_outputs=["result"],
            cotangent_vector={"result": w.astype(np.float32)})
        self.assertEqual(out["v0"].shape, shape)
        np.testing.assert_allclose(out["v0"], gv0, rtol=1e-3, atol=1e-4 * np.abs(gv0).max())
        self.assertAlmostEqual(float(out["viscosity"][0]) / gnu, 1.0, delta=1e-3)

    def test_vjp_matches_central_differences_2d(self):
        self.check_vjp((8, 8, 1, 2), 0.01, 5, 10)

    def test_vjp_matches_central_differences_3d(self):
        self.check_vjp((6, 6, 6, 3), 0.05, 3, 20)

    def test_abstract_eval_and_refused_inputs(self):
        v0 = tgv(8).astype(np.float32)
        shapes = self.t.abstract_eval({"v0": {"shape": [8, 8, 1, 2], "dtype": "float32"},
                                       "steps": 2})
        self.assertEqual(tuple(shapes["result"]["shape"]), (8, 8, 1, 2))
        bad = {"v0": v0, "steps": 2,
               "boundary_conditions": {"y_lo": {"type": "no_slip"}, "y_hi": {"type": "no_slip"}}}
        with self.assertRaises(Exception) as e:
            self.t.apply(bad)
        self.assertIn("boundary_conditions.y_lo", str(e.exception))
        with self.assertRaises(Exception) as e:
            self.t.vector_jacobian_product({"v0": v0, "steps": 2}, vjp_inputs=["dt"],
                                           vjp_outputs=["result"],
                                           cotangent_vector={"result": v0})
        self.assertIn("dt", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
