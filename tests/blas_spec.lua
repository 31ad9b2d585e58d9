-- keras.backend.blas_info() and the correction of OpenBLAS's kernel choice
-- (src/blas.c) from stock lua5.4 (require "keras") and from the lkeras host.
-- The embedding host's view, and every correction case, is tests/c/test_blas.c.
local keras = require "keras"
local K = keras.backend

local CLEAN = "env -u OPENBLAS_CORETYPE -u LKERAS_TEST_BLAS_CORE -u LKERAS_TEST_BLAS_MISMATCH "

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local PROBE = [[local b = (keras or require 'keras').backend.blas_info()
print('core=' .. b.core); print('chosen_by=' .. b.chosen_by); print('cpu_level=' .. b.cpu_level)
print('rejected=' .. tostring(b.rejected))]]

local function probe(prefix)
  local out, ok = sh(prefix .. string.format(" -e %q", PROBE))
  assert(ok, out)
  local r = {}
  for k, v in out:gmatch("(%w[%w_]*)=([^\n]*)") do r[k] = v end
  return r, out
end

describe("keras.backend.blas_info", function()
  it("names the kernels, how they were chosen, the threads and the CPU", function()
    local b = K.blas_info()
    assert.is_string(b.core)
    assert.is_true(#b.core > 0)
    assert.is_truthy(({openblas = 1, user = 1, lkeras = 1})[b.chosen_by])
    assert.is_string(b.detail)
    assert.is_true(math.type(b.threads) == "integer" and b.threads >= 1)
    assert.is_string(b.cpu)
    assert.is_truthy(({SSE = 1, AVX = 1, ["AVX2+FMA"] = 1, ["AVX-512"] = 1, unknown = 1})[b.cpu_level])
    assert.matches("OpenBLAS", b.config)
    assert.is_boolean(b.checked)
    if os.getenv("OPENBLAS_CORETYPE") and os.getenv("OPENBLAS_CORETYPE") ~= "" then
      assert.equals("user", b.chosen_by)
      assert.equals(os.getenv("OPENBLAS_CORETYPE"):lower(), b.core:lower())
    end
  end)

  it("follows the thread setting", function()
    local before = keras.get_num_threads()
    keras.set_num_threads(1)
    assert.equals(1, K.blas_info().threads)
    keras.set_num_threads(before)
    assert.equals(before, K.blas_info().threads)
  end)
end)

describe("OpenBLAS's fallback kernels", function()
  local lua = CLEAN .. "LUA_CPATH='build/?.so;;' "

  it("are corrected under require 'keras' from stock lua5.4", function()
    local r, out = probe(lua .. "LKERAS_TEST_BLAS_CORE=Prescott lua5.4")
    if r.cpu_level == "SSE" or r.cpu_level == "unknown" then
      assert.equals("Prescott", r.core, out)
    else
      assert.equals("lkeras", r.chosen_by, out)
      assert.are_not.equal("Prescott", r.core)
    end
  end)

  it("are corrected in the lkeras host", function()
    local r, out = probe(CLEAN .. "LKERAS_TEST_BLAS_CORE=Prescott build/lkeras")
    if r.cpu_level ~= "SSE" and r.cpu_level ~= "unknown" then
      assert.equals("lkeras", r.chosen_by, out)
      assert.are_not.equal("Prescott", r.core)
    end
  end)

  it("stay when the user set OPENBLAS_CORETYPE", function()
    local r, out = probe(lua .. "OPENBLAS_CORETYPE=Prescott lua5.4")
    assert.equals("user", r.chosen_by, out)
    assert.equals("Prescott", r.core, out)
  end)

  it("come back, with a warning on stderr, when the better core disagrees with the reference", function()
    local r, out = probe(lua .. "LKERAS_TEST_BLAS_CORE=Prescott LKERAS_TEST_BLAS_MISMATCH=1 lua5.4")
    assert.equals("Prescott", r.core, out)
    if r.cpu_level ~= "SSE" and r.cpu_level ~= "unknown" then
      assert.equals("openblas", r.chosen_by, out)
      assert.are_not.equal("nil", r.rejected, out)
      assert.matches("lkeras: warning: OpenBLAS runs its Prescott kernels", out, 1, true)
    end
  end)
end)

describe("lkeras --version", function()
  it("prints the BLAS line", function()
    local out, ok = sh(CLEAN .. "OPENBLAS_CORETYPE=Prescott build/lkeras --version")
    assert.is_true(ok, out)
    assert.matches("^lkeras %S+ %(Lua 5%.4", out)
    assert.matches("\nOpenBLAS: Prescott kernels %(user: OPENBLAS_CORETYPE=Prescott is set: used as it is%), "
      .. "%d+ threads; CPU: ", out)
  end)
end)
