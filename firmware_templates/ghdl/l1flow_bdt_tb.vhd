-- l1flow test bench for conifer's VHDL BDT (library BDT, top BDTTop).
--
-- Reads raw input words (one event per row: nFeatures signed decimal
-- integers, feature 0 first), drives one event per clock into the pipelined
-- BDTTop, and writes the raw output words (one event per row: nClasses
-- signed decimal integers, class 0 first) in the order they come out. It
-- stops once every event that went in has come out, so the output file has
-- exactly as many rows as the input file. Words are the two's complement
-- integers of the ap_fixed values; nothing goes through printed decimals.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use std.textio.all;

library BDT;
use BDT.Constants.all;
use BDT.Types.all;

entity l1flow_bdt_tb is
  generic(
    INPUT_FILE  : string := "inputs.txt";
    OUTPUT_FILE : string := "outputs.txt"
  );
end entity l1flow_bdt_tb;

architecture sim of l1flow_bdt_tb is
  signal clk   : std_logic := '0';
  signal X     : txArray(0 to nFeatures - 1) := (others => to_tx(0));
  signal X_vld : boolean := false;
  signal y     : tyArray(0 to nClasses - 1) := (others => to_ty(0));
  signal y_vld : boolArray(0 to nClasses - 1) := (others => false);
  signal events_in  : natural := 0;
  signal input_done : boolean := false;
begin
  clk <= not clk after 2.5 ns;

  UUT : entity BDT.BDTTop
    port map(clk => clk, X => X, X_vld => X_vld, y => y, y_vld => y_vld);

  Stimulus : process(clk)
    file f          : text open read_mode is INPUT_FILE;
    variable row    : line;
    variable word   : integer;
    variable ok     : boolean;
  begin
    if rising_edge(clk) then
      if not endfile(f) then
        readline(f, row);
        for i in 0 to nFeatures - 1 loop
          read(row, word, ok);
          assert ok
            report INPUT_FILE & ": row " & integer'image(events_in + 1) &
                   " has fewer than " & integer'image(nFeatures) & " integer words"
            severity failure;
          X(i) <= to_tx(word);
        end loop;
        X_vld <= true;
        events_in <= events_in + 1;
      else
        X_vld <= false;
        input_done <= true;
      end if;
    end if;
  end process;

  Response : process(clk)
    file f           : text open write_mode is OUTPUT_FILE;
    variable row     : line;
    variable events_out : natural := 0;
  begin
    if rising_edge(clk) then
      if y_vld(0) then
        for i in 0 to nClasses - 1 loop
          write(row, to_integer(y(i)));
          if i /= nClasses - 1 then
            write(row, string'(" "));
          end if;
        end loop;
        writeline(f, row);
        events_out := events_out + 1;
      end if;
      if input_done and events_out = events_in then
        std.env.finish;
      end if;
    end if;
  end process;
end architecture sim;
