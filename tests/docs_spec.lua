-- docs: the reference keeps up with the code. scripts/docs/list_api.lua walks
-- the keras table at run time; every name it lists must appear in
-- docs/reference.md, so a new public function, class, method or property
-- fails this spec until it is documented. Links between the docs and to files
-- of the repository must lead somewhere.
local keras = require "keras"
local list = dofile("scripts/docs/list_api.lua")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- name occurs in text, not followed by more of an identifier
local function mentions(text, name)
  local pat = name:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  for pos in text:gmatch("()" .. pat) do
    local after = text:sub(pos + #name, pos + #name)
    if not after:match("[%w_]") then return true end
  end
  return false
end

describe("scripts/docs/list_api.lua", function()
  it("lists the namespaces, classes, functions, methods and properties of the keras table", function()
    local names = {}
    for _, e in ipairs(list(keras)) do names[e.name] = e.kind end
    assert.equal("class", names["keras.layers.Dense"])
    assert.equal("function", names["keras.backend.mean"])
    assert.equal("namespace", names["keras.preprocessing.text"])
    assert.equal("method", names["model:fit"])
    assert.equal("method", names["t:sum"])
    assert.equal("property", names["layer.output_shape"])
    assert.is_nil(names["keras._core"])
  end)
end)

describe("docs/reference.md", function()
  it("mentions every public name of the keras table", function()
    local text = read("docs/reference.md")
    local missing = {}
    for _, e in ipairs(list(keras)) do
      if not mentions(text, e.name) then missing[#missing + 1] = e.name end
    end
    assert(#missing == 0, "docs/reference.md does not mention: " .. table.concat(missing, ", "))
  end)
end)

describe("docs/*.md", function()
  local coming = {}   -- pages the index may link to before they exist (none now)

  it("link only to files that exist", function()
    local bad = {}
    for _, page in ipairs{"README.md", "guide.md", "reference.md", "design.md", "adding_an_op.md"} do
      local text = read("docs/" .. page)
      for target in text:gmatch("%]%(([^)#%s]+)[^)]*%)") do
        if not target:match("^%a+://") and not coming[target] then
          local f = io.open("docs/" .. target, "rb")
          if f then f:close() else bad[#bad + 1] = page .. " -> " .. target end
        end
      end
    end
    assert(#bad == 0, "broken links: " .. table.concat(bad, ", "))
  end)
end)
