# l1flow: Vivado out-of-context synthesis of open RTL (da4ml Verilog, conifer's
# VHDL converted by ghdl, hand-written modules), written like hls4ml's
# vivado_synth.tcl so the same parser reads the result.
#
# usage (run by l1flow.synthesis.vendor.VendorRunner, never by a shell string):
#   vivado -mode batch -nojournal -source vivado_synth_rtl.tcl \
#          -tclargs <top> <part> <clock_period_ns> <source>...
# writes vivado_synth.rpt (utilization) and vivado_timing.rpt in the current folder.

if {[llength $argv] < 4} {
    puts "ERROR: usage: -tclargs <top> <part> <clock_period_ns> <source>..."
    exit 2
}
set top [lindex $argv 0]
set part [lindex $argv 1]
set clock_period [lindex $argv 2]
set sources [lrange $argv 3 end]

foreach src $sources {
    switch -- [file extension $src] {
        ".vhd" - ".vhdl" { read_vhdl -vhdl2008 $src }
        ".sv"            { read_verilog -sv $src }
        default          { read_verilog $src }
    }
}

synth_design -top $top -part $part -mode out_of_context
# every clock-like input port gets the target period, so the timing report is meaningful
set clocks [get_ports -quiet {clk ap_clk clock}]
if {[llength $clocks] > 0} {
    create_clock -period $clock_period -name l1flow_clk $clocks
}
report_utilization -file vivado_synth.rpt
report_timing_summary -file vivado_timing.rpt
exit
