-- make install and the man page: what it installs, and that docs/lkeras.1
-- keeps up with the host's options and the environment variables the code
-- reads. (The rockspec is checked by scripts/run-tests.sh, which installs it
-- into a scratch LuaRocks tree.)
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local MAN = read("docs/lkeras.1")

-- the man page's text with its escapes undone: \- is -, fonts dropped
local function plain(s)
  return (s:gsub("\\%-", "-"):gsub("\\f[BIRP]", ""))
end

describe("make install", function()
  it("installs the host, the module, the library, the header and the man page", function()
    local p = io.popen("mktemp -d /tmp/lkeras-install-XXXXXX")
    local dir = p:read("l")
    p:close()
    local out, ok = run(string.format("make -s install DESTDIR=%s PREFIX=/usr", dir))
    assert(ok, out)
    for _, f in ipairs{"bin/lkeras", "lib/lua/5.4/keras.so", "lib/libkeras.a", "include/lkeras.h",
                       "share/man/man1/lkeras.1", "lib/liblkeras.a", "lib/liblkeras.so", "lib/liblkeras.so.0",
                       "lib/liblkeras.so.0.1", "lib/pkgconfig/lkeras.pc"} do
      assert.truthy(io.open(dir .. "/usr/" .. f, "rb"), f)
    end
    assert.equal(MAN, read(dir .. "/usr/share/man/man1/lkeras.1"))
    assert.truthy(read(dir .. "/usr/lib/pkgconfig/lkeras.pc"):find("prefix=/usr\n", 1, true))
    local soname = run("objdump -p " .. dir .. "/usr/lib/liblkeras.so.0.1 | grep SONAME")
    assert.truthy(soname:find("liblkeras.so.0", 1, true), soname)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- a C host built with pkg-config against a DESTDIR install, in the full
  -- build and in the light one (HDF5=0 IMAGES=0, built in build/light)
  local function host(make_args, b)
    local p = io.popen("mktemp -d /tmp/lkeras-host-XXXXXX")
    local dir = p:read("l")
    p:close()
    local out, ok = run(string.format("make -s %s install DESTDIR=%s PREFIX=/usr", make_args, dir))
    assert(ok, out)
    -- the .pc file says prefix=/usr: a copy says where DESTDIR put it
    os.execute(string.format("mkdir -p %s/pc && sed 's|^prefix=.*|prefix=%s/usr|' %s/usr/lib/pkgconfig/lkeras.pc"
      .. " > %s/pc/lkeras.pc", dir, dir, dir, dir))
    local pc = string.format("PKG_CONFIG_PATH=%s/pc pkg-config", dir)
    out, ok = run(string.format("cc -o %s/game tests/install/game.c $(%s --cflags --libs lkeras)", dir, pc))
    assert(ok, out)
    local got = run(string.format("cd %s && LD_LIBRARY_PATH=%s/usr/lib ./game %s/m.h5", dir, dir, dir))
    local ldd = run(string.format("LD_LIBRARY_PATH=%s/usr/lib ldd %s/game", dir, dir))
    local libs = run(string.format("ldd %s/usr/lib/liblkeras.so.0.1", dir))
    os.execute("rm -rf '" .. dir .. "'")
    assert.truthy(ldd:find(dir .. "/usr/lib/liblkeras.so.0", 1, true), ldd)
    local first, last, pred = got:match("^loss (%S+) (%S+) pred (%S+) ")
    assert.truthy(first, got .. " (" .. b .. ")")
    assert.is_true(tonumber(last) < 0.05 * tonumber(first), got)
    assert.is_true(math.abs(tonumber(pred) - 2) < 0.3, got)
    return got, libs
  end

  it("builds a C host with pkg-config against the installed library", function()
    local got, libs = host("", "build")
    assert.truthy(got:find("h5 ok\n", 1, true), got)
    assert.truthy(libs:find("libhdf5", 1, true), libs)
  end)

  it("builds without HDF5, libpng and libjpeg (make HDF5=0 IMAGES=0)", function()
    local got, libs = host("B=build/light HDF5=0 IMAGES=0", "build/light")
    assert.truthy(got:find("built without HDF5", 1, true), got)
    for _, lib in ipairs{"libhdf5", "libpng", "libjpeg"} do assert.falsy(libs:find(lib, 1, true), libs) end
    for _, lib in ipairs{"liblua5.4", "libopenblas", "libz"} do assert.truthy(libs:find(lib, 1, true), libs) end
    local out = run("build/light/lkeras -e \"local ok, e = pcall(keras.preprocessing.image.load_img, 'x.png'); "
      .. "print(e)\"")
    assert.truthy(out:find("built without image files", 1, true), out)
  end)
end)

describe("docs/lkeras.1", function()
  local text = plain(MAN)

  it("documents every option lkeras --help lists", function()
    local help = run("build/lkeras --help")
    local opts = {}
    for opt in help:gmatch("\n  (%-%-?%a*)") do opts[#opts + 1] = opt end
    assert.is_true(#opts >= 10, help)
    for _, opt in ipairs(opts) do
      local pat = "\n%.[BTIR]+ [^\n]*" .. opt:gsub("%-", "%%-") .. "[%s\"]"
      assert.truthy(text:find(pat) or text:find("\n%.B " .. opt:gsub("%-", "%%-") .. "\n"), "option " .. opt)
    end
  end)

  it("documents the environment variables the host and the engine read", function()
    local names = {LUA_INIT_5_4 = true, LUA_INIT = true, LKERAS_FASHION_MNIST_DIR = true, LKERAS_MNIST_DIR = true}
    local files = run("ls src/*.c src/*/*.c")
    for path in files:gmatch("[^\n]+") do
      for name in read(path):gmatch('getenv%("([%w_]+)"%)') do names[name] = true end
    end
    local count = 0
    for name in pairs(names) do
      if not name:match("^LKERAS_TEST_") then   -- the test suite's own switches
        count = count + 1
        assert.truthy(text:find(".B " .. name, 1, true) or text:find(".BR " .. name, 1, true)
          or text:find(", " .. name, 1, true), "variable " .. name)
      end
    end
    assert.is_true(count >= 6)
  end)

  it("renders without a warning", function()
    if not run("command -v groff"):match("groff") then pending("groff is not installed") return end
    local out, ok = run("groff -man -ww -z docs/lkeras.1")
    assert.is_true(ok)
    assert.equal("", out)
  end)
end)
