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
                       "share/man/man1/lkeras.1"} do
      assert.truthy(io.open(dir .. "/usr/" .. f, "rb"), f)
    end
    assert.equal(MAN, read(dir .. "/usr/share/man/man1/lkeras.1"))
    os.execute("rm -rf '" .. dir .. "'")
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
