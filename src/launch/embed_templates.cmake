# Writes OUT: a C++ source defining TemplateSet::builtin() from the templates in DIR
# (conf/templates). Run at build time, so editing a template rebuilds the library.
set(names slurm.sbatch.tmpl bcp.sh.tmpl local.sh.tmpl)
set(fields slurm bcp local)
set(body "")
foreach(i RANGE 2)
  list(GET names ${i} name)
  list(GET fields ${i} field)
  file(READ "${DIR}/${name}" text)
  string(FIND "${text}" ")bignlp_template\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${DIR}/${name} contains the raw-string delimiter ')bignlp_template\"'")
  endif()
  string(APPEND body "  t.${field} = R\"bignlp_template(${text})bignlp_template\";\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from conf/templates/ by src/launch/embed_templates.cmake; do not edit.\n"
  "#include \"bignlp/launch/renderer.h\"\n\nnamespace bignlp::launch {\n\nTemplateSet TemplateSet::builtin() {\n"
  "  TemplateSet t;\n${body}  return t;\n}\n\n}  // namespace bignlp::launch\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
