## Poly1305 arithmetic on 5 × 26-bit limbs, one lane per message block, written once for every
## vector width: the AVX2 (4 lanes) and AVX-512 (8 lanes) paths expand these templates with
## their own `add`, `mul`, `andv`, `srli`, `slli` (resolved where the template is used, so the
## code lands inside the caller's target-attributed proc).

template mulAdd*(d, h, r, s: untyped) =
  ## d = h · r mod 2^130 - 5, unreduced (s_i = 5·r_i folds 2^130 back into limb 0).
  mixin add, mul
  d[0] = add(add(add(add(mul(h[0], r[0]), mul(h[1], s[4])), mul(h[2], s[3])), mul(h[3], s[2])), mul(h[4], s[1]))
  d[1] = add(add(add(add(mul(h[0], r[1]), mul(h[1], r[0])), mul(h[2], s[4])), mul(h[3], s[3])), mul(h[4], s[2]))
  d[2] = add(add(add(add(mul(h[0], r[2]), mul(h[1], r[1])), mul(h[2], r[0])), mul(h[3], s[4])), mul(h[4], s[3]))
  d[3] = add(add(add(add(mul(h[0], r[3]), mul(h[1], r[2])), mul(h[2], r[1])), mul(h[3], r[0])), mul(h[4], s[4]))
  d[4] = add(add(add(add(mul(h[0], r[4]), mul(h[1], r[3])), mul(h[2], r[2])), mul(h[3], r[1])), mul(h[4], r[0]))

template carry*(h, d, mask: untyped) =
  ## Partial reduction: every limb back under 2^26 (limb 1 may keep a tiny excess).
  mixin add, andv, srli, slli
  var c = srli(d[0], 26)
  h[0] = andv(d[0], mask)
  var t = add(d[1], c); c = srli(t, 26); h[1] = andv(t, mask)
  t = add(d[2], c); c = srli(t, 26); h[2] = andv(t, mask)
  t = add(d[3], c); c = srli(t, 26); h[3] = andv(t, mask)
  t = add(d[4], c); c = srli(t, 26); h[4] = andv(t, mask)
  h[0] = add(h[0], add(c, slli(c, 2)))
  c = srli(h[0], 26); h[0] = andv(h[0], mask); h[1] = add(h[1], c)
