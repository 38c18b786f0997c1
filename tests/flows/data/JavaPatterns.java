// Generates java_patterns.tsv, the reference outputs tests/flows/test_variables.py holds
// flows.variables.java_format to: `java JavaPatterns.java > java_patterns.tsv` (JDK 11+).
// DateTimeFormatter with English names and weeks from Monday, week 1 holding 1 January
// (WeekFields.of(MONDAY, 1): the "fw-mon" extension on en-US), the rule DMS documents.
import java.time.*;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

public class JavaPatterns {
  static final String PATTERN =
      "G|GGGG|y|yy|yyy|yyyy|Y|YY|YYYY|w|ww|W|D|DD|DDD|E|EEE|EEEE|e|ee|eee|eeee"
          + "|M|MM|MMM|MMMM|d|dd|H|HH|k|kk|K|KK|h|hh|a|m|mm|s|ss|S|SS|SSS";

  public static void main(String[] args) {
    DateTimeFormatter f =
        DateTimeFormatter.ofPattern(PATTERN, Locale.forLanguageTag("en-US-u-fw-mon"));
    System.out.println("# " + PATTERN);
    int hour = 0;
    for (int year = 2019; year <= 2028; year++) {
      // Every day around the turn of the year (week-of-year and week-year boundaries) ...
      LocalDate day = LocalDate.of(year, 12, 24);
      for (int i = 0; i < 16; i++, day = day.plusDays(1)) {
        hour = (hour + 7) % 24;
        LocalDateTime t = day.atTime(hour, (hour * 13) % 60, (hour * 29) % 60, hour * 41_000_000);
        System.out.println(t + "\t" + f.format(t));
      }
      // ... and the first and last day of every month.
      for (int month = 1; month <= 12; month++) {
        LocalDate first = LocalDate.of(year, month, 1);
        for (LocalDate d : new LocalDate[] {first, first.plusMonths(1).minusDays(1)}) {
          hour = (hour + 5) % 24;
          LocalDateTime t = d.atTime(hour, 59, 1, 999_000_000);
          System.out.println(t + "\t" + f.format(t));
        }
      }
    }
  }
}
